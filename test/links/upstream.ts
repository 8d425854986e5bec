/**
 * A real upstream for link tests (issue 15): a TCP (lines or length framing) or WebSocket server that counts the
 * connections it accepts, records what it receives, streams numbered messages, and can be killed and restarted on
 * the same port. Payloads are strings both ways (length frames carry UTF-8).
 */
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { type WebSocket, WebSocketServer } from 'ws';
import { Inbox } from '../helpers/clients.js';

export type UpstreamKind = 'lines' | 'length' | 'ws';

export interface Upstream {
  readonly kind: UpstreamKind;
  readonly port: number;
  readonly url: string;
  /** Connections accepted since start, across restarts. */
  readonly accepted: number;
  readonly received: Inbox;
  /** Send to every connected peer. */
  send(msg: string): void;
  /** Send raw bytes to every connected peer's socket, under any WebSocket framing (hostile or partial frames). */
  sendRaw(bytes: Buffer): void;
  /** WebSocket only: one fragment of a text message (`fin` false leaves the message open). */
  sendFragment(text: string, fin: boolean): void;
  /** Stream `0, 1, 2, …` in small batches until stopStreaming(); resolves the count sent. */
  startStreaming(): void;
  stopStreaming(): number;
  /** Close the server and every connection. */
  kill(): Promise<void>;
  /** Listen again on the same port. */
  restart(): Promise<void>;
}

function lengthFrame(s: string): Buffer {
  const body = Buffer.from(s);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
}

/** `tls`: serve TLS with this key and certificate (tls:// for lines and length; wss:// for ws). */
export async function startUpstream(kind: UpstreamKind, tlsOptions?: { key: Buffer; cert: Buffer }): Promise<Upstream> {
  const received = new Inbox();
  const peers = new Set<{ write(s: string): void; raw(b: Buffer): void; fragment(s: string, fin: boolean): void; destroy(): void }>();
  let accepted = 0;
  let port = 0;
  let server: net.Server | http.Server;
  let wss: WebSocketServer | undefined;

  const onTcp = (socket: net.Socket) => {
    accepted++;
    let buf = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (kind === 'lines') {
        let nl: number;
        while ((nl = buf.indexOf(0x0a)) !== -1) {
          received.push(buf.subarray(0, nl).toString());
          buf = buf.subarray(nl + 1);
        }
      } else {
        while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
          const n = buf.readUInt32BE(0);
          received.push(buf.subarray(4, 4 + n).toString());
          buf = buf.subarray(4 + n);
        }
      }
    });
    socket.on('error', () => undefined);
    const peer = {
      write: (s: string) => socket.write(kind === 'lines' ? s + '\n' : lengthFrame(s)),
      raw: (b: Buffer) => socket.write(b),
      fragment: () => {
        throw new Error('fragments are for WebSocket upstreams');
      },
      destroy: () => socket.destroy(),
    };
    peers.add(peer);
    socket.on('close', () => peers.delete(peer));
  };
  const onWs = (ws: WebSocket, req: http.IncomingMessage) => {
    accepted++;
    ws.on('message', (d) => received.push(String(d)));
    ws.on('error', () => undefined);
    const peer = {
      write: (s: string) => ws.send(s),
      raw: (b: Buffer) => req.socket.write(b),
      fragment: (s: string, fin: boolean) => ws.send(s, { fin }),
      destroy: () => ws.terminate(),
    };
    peers.add(peer);
    ws.on('close', () => peers.delete(peer));
  };

  const listen = async () => {
    if (kind === 'ws') {
      const web = tlsOptions ? (await import('node:https')).createServer(tlsOptions) : http.createServer();
      server = web;
      wss = new WebSocketServer({ server: web, perMessageDeflate: false });
      wss.on('connection', onWs);
    } else {
      server = tlsOptions ? tls.createServer(tlsOptions, onTcp) : net.createServer(onTcp);
    }
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    port = (server.address() as net.AddressInfo).port;
  };
  await listen();

  let seq = 0;
  let timer: NodeJS.Timeout | undefined;
  const tick = () => {
    for (let i = 0; i < 5; i++) for (const p of peers) p.write(String(seq++));
    timer = setTimeout(tick, 2);
  };
  const scheme = kind === 'ws' ? (tlsOptions ? 'wss' : 'ws') : tlsOptions ? 'tls' : 'tcp';
  return {
    kind,
    get port() {
      return port;
    },
    get url() {
      return `${scheme}://127.0.0.1:${port}`;
    },
    get accepted() {
      return accepted;
    },
    received,
    send: (msg) => {
      for (const p of peers) p.write(msg);
    },
    sendRaw: (b) => {
      for (const p of peers) p.raw(b);
    },
    sendFragment: (text, fin) => {
      for (const p of peers) p.fragment(text, fin);
    },
    startStreaming: () => {
      timer ??= setTimeout(tick, 0);
    },
    stopStreaming: () => {
      clearTimeout(timer);
      timer = undefined;
      return seq;
    },
    kill: async () => {
      clearTimeout(timer);
      timer = undefined;
      for (const p of peers) p.destroy();
      wss?.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    restart: listen,
  };
}
