/**
 * WebSocket listener on `ws`. hotline's own HTTP server (HTTPS with `tls`), or an app's server it attaches to, hands
 * upgrades to a `noServer` WebSocketServer. `ws` enforces maxPayload itself and closes with 1009.
 */
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import type { Connection } from '../connection/connection.js';
import type { Link } from '../connection/link.js';
import type { Handshake, HandoffSource } from '../connection/link.js';
import type { IncomingMessage } from 'node:http';
import { HotlineError } from '../errors.js';
import type { FrameEncoder, PreparedMessage } from '../rooms/prepared-message.js';
import { serverFrame, writeServerFrame } from '../internals/ws-internals.js';
import { SESSION_PROTOCOL } from '../session/protocol.js';
import { listen } from './listen.js';
import { corkForTurn } from './tick-cork.js';
import { WsGuard, type WsGuardDeps } from './ws-guard.js';
import { WsHeartbeat } from './ws-heartbeat.js';
import { type TlsMaterial, loadTls } from './tls.js';
import { type ListenAddress, type Transport, type TransportHost, type WsListenOptions, listenUrl } from './transport.js';

const kConn = Symbol('hotline.conn');
type WsWithConn = WebSocket & { [kConn]: Connection };

/** Every server-side WebSocket of hotline frames a message alike: one encoder, so a room builds one frame. */
const WS_FRAMES: FrameEncoder = { encode: serverFrame };

/** The socket side of one WebSocket connection. */
class WsLink implements Link {
  readonly transport = 'ws' as const;
  readonly remoteAddress: string;
  /**
   * issue 12: the upgrade request, for a canary's `match`. Set only while the connection is accepted (the router
   * reads it once, synchronously) and dropped after, so no connection keeps its request headers.
   */
  handshake: Handshake | undefined;
  #ws: WebSocket;
  #guard: WsGuard;

  constructor(ws: WebSocket, remoteAddress: string, guard: WsGuard) {
    this.#ws = ws;
    this.#guard = guard;
    this.remoteAddress = remoteAddress;
  }

  get bufferedAmount(): number {
    return this.#ws.bufferedAmount;
  }

  send(data: string | Uint8Array): void {
    this.#ws.send(data);
  }

  sendPrepared(msg: PreparedMessage): void {
    if (!writeServerFrame(this.#ws, msg.frame(WS_FRAMES), corkForTurn)) this.#ws.send(msg.data);
  }

  close(code: number, reason: string): void {
    this.#ws.close(code, reason);
  }

  terminate(): void {
    this.#ws.terminate();
  }

  pauseReading(): void {
    this.#ws.pause();
  }

  resumeReading(): void {
    this.#ws.resume();
  }

  forget(): void {
    this.#guard.dispose();
  }

  handoff(): HandoffSource {
    return { kind: 'ws', ws: this.#ws };
  }
}

// Shared listeners, the ws `socketOnClose` pattern: no closure per connection on the message path.
function wsOnMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  (this as WsWithConn)[kConn].receive(isBinary ? (data as Buffer) : data.toString());
}

function wsOnClose(this: WebSocket, code: number, reason: Buffer): void {
  (this as WsWithConn)[kConn].closed({ code, reason: reason.toString() });
}

export class WsTransport implements Transport {
  #options: WsListenOptions;
  #host: TransportHost;
  #wss: WebSocketServer;
  #server: http.Server | https.Server | undefined;
  #tls: TlsMaterial | undefined;
  #ownServer = false;
  #accepting = false;
  #address: ListenAddress | undefined;
  #handshakes = new Map<Duplex, NodeJS.Timeout>();
  #heartbeat: WsHeartbeat;
  #guardDeps: WsGuardDeps;
  #onUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.#upgrade(req, socket, head);

  constructor(options: WsListenOptions, host: TransportHost) {
    this.#options = options;
    this.#host = host;
    this.#tls = options.tls && loadTls(options.tls, 'listen[].tls');
    this.#heartbeat = new WsHeartbeat(host.limits);
    this.#guardDeps = { incomplete: host.incomplete, heartbeat: this.#heartbeat, reportError: (err, conn) => host.reportError(err, conn) };
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: host.limits.maxPayload,
      clientTracking: false,
      perMessageDeflate: false,
      // With sessions on, a client offering `hotline.v1` gets it; otherwise ws' default (the first offered), except
      // that `hotline.v1` is never chosen by a host that does not speak it: the client then knows (HOTLINE_E_CLIENT_UNSUPPORTED).
      handleProtocols: (protocols: Set<string>) => selectProtocol(protocols, host.sessions !== undefined),
    });
  }

  async start(): Promise<void> {
    this.#accepting = true;
    if (this.#options.server) {
      this.#server = this.#options.server;
      this.#server.on('upgrade', this.#onUpgrade);
      const addr = this.#server.address();
      const host = addr && typeof addr === 'object' ? addr.address : (this.#options.host ?? 'localhost');
      const port = addr && typeof addr === 'object' ? addr.port : (this.#options.port ?? 0);
      this.#address = this.#makeAddress(host, port);
      return;
    }
    const onRequest = (_req: http.IncomingMessage, res: http.ServerResponse) => {
      res.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket' });
      res.end('hotline: this endpoint speaks WebSocket\n');
    };
    // With TLS the bound covers the TLS handshake (the server's own timer) and then the HTTP upgrade (ours, armed
    // on the TLS socket, which is the one the request and the upgrade arrive on).
    const server = this.#tls
      ? https.createServer({ ...this.#tls, handshakeTimeout: this.#host.limits.handshakeTimeout }, onRequest)
      : http.createServer(onRequest);
    this.#ownServer = true;
    this.#server = server;
    server.on('upgrade', this.#onUpgrade);
    server.on(this.#tls ? 'secureConnection' : 'connection', (socket: Duplex) => this.#armHandshake(socket));
    server.on('request', (req) => this.#disarmHandshake(req.socket));
    const { host, port } = await listen(server, this.#options.port ?? 0, this.#options.host ?? '127.0.0.1', this.#options.handle);
    this.#address = this.#makeAddress(host, port);
  }

  address(): ListenAddress {
    if (!this.#address) throw new HotlineError('HOTLINE_E_LISTEN', 'the WebSocket listener is not started');
    return this.#address;
  }

  async stopAccepting(): Promise<void> {
    if (!this.#accepting) return;
    this.#accepting = false;
    this.#heartbeat.close();
    this.#host.admit?.close();
    for (const timer of this.#handshakes.values()) clearTimeout(timer);
    this.#handshakes.clear();
    const server = this.#server;
    if (!server) return;
    server.off('upgrade', this.#onUpgrade);
    if (this.#ownServer && server.listening) {
      server.close();
      server.closeIdleConnections();
    }
  }

  /**
   * @internal For a process upgrade (src/handoff): stop listening, but finish the handshakes already under way so
   * they can move too. The supervisor still holds the listening socket: new connects wait in the kernel backlog.
   */
  pauseAccepting(): void {
    if (this.#ownServer && this.#server?.listening) this.#server.close();
  }

  /** @internal Listen again on a handle from the supervisor, after an aborted upgrade. */
  async resumeAccepting(handle: object): Promise<void> {
    const server = this.#server;
    if (!this.#ownServer || !server || server.listening) return;
    await listen(server, 0, this.#options.host ?? '127.0.0.1', handle);
  }

  /** @internal Sockets connected to hotline's own server whose WebSocket handshake has not completed. */
  get pendingHandshakes(): number {
    return this.#handshakes.size;
  }

  /** @internal The sockets counted by pendingHandshakes, for an upgrade to send away those that stall. */
  stalledHandshakes(): Duplex[] {
    return [...this.#handshakes.keys()];
  }

  /**
   * @internal Send away a client whose handshake stalled past an upgrade's bound: a 503 with Retry-After, the HTTP
   * form of "reconnect". False (and nothing sent) if its handshake completed or it closed meanwhile.
   */
  sendAwayHandshake(socket: Duplex): boolean {
    if (!this.#handshakes.has(socket)) return false;
    this.#disarmHandshake(socket);
    reject(socket, 503, 'Service Unavailable', 'Retry-After: 1\r\n');
    return true;
  }

  /** @internal The options a server-side WebSocket of this listener is built with, for rebuilding a moved one. */
  get wsOptions(): Record<string, unknown> {
    return this.#wss.options as Record<string, unknown>;
  }

  /** @internal Adopt a WebSocket rebuilt from a socket moved from another process (src/handoff). */
  adopt(ws: WebSocket, remoteAddress: string, makeConn: (link: Link) => Connection): Connection {
    return this.#wire(ws, remoteAddress, new WsGuard(ws, this.#guardDeps), makeConn);
  }

  #makeAddress(host: string, port: number): ListenAddress {
    const path = this.#options.path ?? '/';
    // An app's server attached with `server` may be an https.Server: then so is the URL.
    const secure = this.#server instanceof tls.Server;
    const address: ListenAddress = { transport: 'ws', host, port, url: listenUrl('ws', secure, host, port, path) };
    if (secure) address.tls = true;
    return address;
  }

  /** A client that connects but never completes its upgrade would hold a socket forever: bound it. */
  #armHandshake(socket: Duplex): void {
    const ms = this.#host.limits.handshakeTimeout;
    const timer = setTimeout(() => {
      this.#handshakes.delete(socket);
      this.#host.reportError(new HotlineError('HOTLINE_E_HANDSHAKE_TIMEOUT', `no WebSocket handshake within ${ms} ms; socket closed`));
      socket.destroy();
    }, ms);
    timer.unref();
    this.#handshakes.set(socket, timer);
    socket.once('close', () => this.#disarmHandshake(socket));
  }

  #disarmHandshake(socket: Duplex): void {
    const timer = this.#handshakes.get(socket);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.#handshakes.delete(socket);
  }

  #upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = this.#options.path;
    if (path !== undefined && new URL(req.url ?? '/', 'http://x').pathname !== path) {
      this.#disarmHandshake(socket);
      // Another upgrade handler of the app's server may take it; on our own server nobody will.
      if (this.#ownServer) reject(socket, 404, 'Not Found');
      return;
    }
    if (!this.#accepting) return this.#refuse(socket, 503, 'Service Unavailable');
    if (!this.#host.canAccept()) return this.#refuseFull(req, socket);
    const admit = this.#host.admit;
    const refused = admit?.check(req.socket.remoteAddress, socket);
    if (refused) {
      this.#disarmHandshake(socket);
      const answer = refused === 'rate' ? () => reject(socket, 429, 'Too Many Requests', 'Retry-After: 1\r\n') : () => reject(socket, 503, 'Service Unavailable');
      return admit!.refuse(refused, req.socket.remoteAddress, socket, answer);
    }
    // The upgrade itself waits its turn (handshake-pacer.ts). Meanwhile the socket stays a pending handshake, under
    // its handshake timeout and visible to a process upgrade (armed again if an earlier request on this keep-alive
    // socket disarmed it); what its client sent behind the request (`head`) counts against the pacer's byte bound.
    if (this.#ownServer && !this.#handshakes.has(socket)) this.#armHandshake(socket);
    if (!this.#host.pacer.pace(() => this.#complete(req, socket, head), head.length)) {
      this.#host.reportError(new HotlineError('HOTLINE_E_HANDSHAKE_BACKLOG', `refused a WebSocket from ${req.socket.remoteAddress}: the handshake queue is full (${this.#host.pacer.queued} waiting, ${this.#host.pacer.queuedBytes} bytes held)`));
      this.#refuse(socket, 503, 'Service Unavailable', 'Retry-After: 1\r\n');
    }
  }

  #refuseFull(req: http.IncomingMessage, socket: Duplex): void {
    this.#host.reportError(
      new HotlineError('HOTLINE_E_MAX_CONNECTIONS', `refused a WebSocket from ${req.socket.remoteAddress}: maxConnections (${this.#host.limits.maxConnections}) reached`),
    );
    this.#refuse(socket, 503, 'Service Unavailable');
  }

  #refuse(socket: Duplex, status: number, text: string, headers?: string): void {
    this.#disarmHandshake(socket);
    reject(socket, status, text, headers);
  }

  /**
   * Complete an upgrade whose turn came, unless its client left or it was answered meanwhile (its handshake timed
   * out: destroyed; a process upgrade sent it away: ended).
   */
  #complete(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    if (socket.destroyed || socket.writableEnded) return;
    if (!this.#accepting) return this.#refuse(socket, 503, 'Service Unavailable');
    // Others may have completed while this one waited.
    if (!this.#host.canAccept()) return this.#refuseFull(req, socket);
    this.#disarmHandshake(socket);
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      // Plain or session, every socket gets its partial-frame bounds and its pings.
      const guard = new WsGuard(ws, this.#guardDeps);
      // A session client (src/session): its frames carry seqs and acks, so the session layer owns the socket.
      if (this.#host.sessions && ws.protocol === SESSION_PROTOCOL) return this.#host.sessions.attach(ws, req.socket.remoteAddress ?? '');
      this.#wire(ws, req.socket.remoteAddress ?? '', guard, (link) => this.#host.accept(link), req);
    });
  }

  #wire(ws: WebSocket, remoteAddress: string, guard: WsGuard, makeConn: (link: Link) => Connection, req?: IncomingMessage): Connection {
    const link = new WsLink(ws, remoteAddress, guard);
    if (req) link.handshake = { transport: 'ws', remoteAddress, headers: req.headers, url: req.url ?? '' };
    const conn = makeConn(link);
    link.handshake = undefined;
    guard.conn = conn;
    (ws as WsWithConn)[kConn] = conn;
    ws.on('message', wsOnMessage);
    ws.on('close', wsOnClose);
    ws.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
        this.#host.reportError(
          new HotlineError('HOTLINE_E_PAYLOAD_TOO_LARGE', `connection ${conn.id}: a message exceeds maxPayload (${this.#host.limits.maxPayload} bytes); closed with 1009`),
          conn,
        );
      }
    });
    return conn;
  }
}

function selectProtocol(protocols: Set<string>, sessions: boolean): string | false {
  if (sessions && protocols.has(SESSION_PROTOCOL)) return SESSION_PROTOCOL;
  for (const p of protocols) if (p !== SESSION_PROTOCOL) return p;
  return false;
}

function ignoreSocketError(): void {}

/**
 * Answer an upgrade with an HTTP error and close. Node's HTTP server takes its error listener off a socket at the
 * upgrade, so this one adds its own: a client that resets instead of reading the answer (ECONNRESET, EPIPE) must not
 * be an unhandled 'error' event, which would take the process down (test/hostile/refused-reset.test.ts).
 */
function reject(socket: Duplex, status: number, text: string, headers = ''): void {
  socket.on('error', ignoreSocketError);
  socket.end(`HTTP/1.1 ${status} ${text}\r\n${headers}Connection: close\r\nContent-Length: 0\r\n\r\n`);
}
