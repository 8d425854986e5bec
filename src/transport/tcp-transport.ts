/**
 * TCP listener, plain or TLS. Each socket gets one decoder (lines or length-prefixed); each decoded message goes to
 * its connection.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { Connection } from '../connection/connection.js';
import type { Link } from '../connection/link.js';
import type { HandoffSource } from '../connection/link.js';
import { HotlineError } from '../errors.js';
import type { MessageData } from '../plugin/contract.js';
import type { Decoder, Framing, FramingKind } from '../framing/framing.js';
import { lengthPrefixed } from '../framing/length-prefixed.js';
import { lines } from '../framing/lines.js';
import type { FrameEncoder, PreparedMessage } from '../rooms/prepared-message.js';
import type { IncompleteHolder } from './incomplete-frames.js';
import { type ListenAddress, type TcpListenOptions, type Transport, type TransportHost, listenUrl } from './transport.js';
import { listen } from './listen.js';
import { corkForTurn } from './tick-cork.js';
import { startReading, stopReading } from '../internals/node-internals.js';
// WebSocket close codes reused for TCP close info, so plugins see one vocabulary (RFC 6455 §7.4.1).
import { CLOSE_ABNORMAL, CLOSE_NORMAL, CLOSE_POLICY, CLOSE_TOO_BIG } from '../connection/close-codes.js';
import { type TlsMaterial, loadTls } from './tls.js';


/**
 * What a paused connection still reads from its socket, held undecoded, before the socket itself is paused. Node
 * emits no 'end' for a paused socket while bytes wait in its read buffer: with `socket.pause()` at once, a client
 * that closed right behind its burst kept its slot, and the plugin handled its queue, until reading resumed. Read on,
 * a close that follows within this many bytes is seen as soon as it arrives, and the queue is dropped and counted
 * (issue 9 item 4). One behind more is seen once the bytes before it are read: it is not in the kernel's buffers
 * yet either, since the window is closed. Small, as Node's own read buffer (16 KiB): every paused flooder holds it,
 * plus the read (up to 64 KiB) that crosses it.
 */
const READ_AHEAD_BYTES = 16 * 1024;

/** One frame encoder per framing (a room delivery encodes once per encoder), bytes so each write copies nothing. */
const FRAMES = new Map<Framing, FrameEncoder>(
  [lines, lengthPrefixed].map((f) => [f, { encode: (data: MessageData) => Buffer.from(f.encode(data)) }]),
);

/** The socket side of one TCP connection. */
class TcpLink implements Link, IncompleteHolder {
  readonly transport = 'tcp' as const;
  readonly remoteAddress: string;
  conn!: Connection;
  closeInfo = { code: CLOSE_NORMAL, reason: '' };
  incompleteBytes = 0;
  incompleteSince = 0;
  #socket: net.Socket;
  #framing: Framing;
  #decoder: Decoder;
  #host: TransportHost;
  // Bound once per connection: the decoder calls it for every message.
  #deliver = (data: MessageData) => this.conn.receive(data);
  /** The connection asked not to be given messages (its queue is full): chunks read meanwhile wait in #held. */
  #paused = false;
  #held: Buffer[] = [];
  #heldBytes = 0;
  #replayScheduled = false;
  /** Held back for its address' share of partial frames (incomplete-frames.ts), and not released since. */
  #heldBack = false;

  constructor(socket: net.Socket, framing: Framing, host: TransportHost) {
    this.#socket = socket;
    this.#framing = framing;
    this.#host = host;
    this.#decoder = framing.createDecoder(host.limits.maxPayload);
    this.remoteAddress = socket.remoteAddress ?? '';
  }

  get bufferedAmount(): number {
    return this.#socket.writableLength;
  }

  send(data: MessageData): void {
    this.#socket.write(this.#framing.encode(data));
  }

  sendPrepared(msg: PreparedMessage): void {
    const frames = FRAMES.get(this.#framing);
    corkForTurn(this.#socket);
    this.#socket.write(frames ? msg.frame(frames) : this.#framing.encode(msg.data));
  }

  close(code: number, reason: string): void {
    this.closeInfo = { code, reason };
    this.#socket.end();
  }

  terminate(): void {
    this.#socket.destroy();
  }

  /** Stop decoding; the socket is read on, up to READ_AHEAD_BYTES, so that a close behind a burst is seen. */
  pauseReading(): void {
    this.#paused = true;
  }

  /**
   * Decode what was held, in order, then read from the socket again, unless that filled the queue once more. On the
   * next tick, as a socket's resume() delivers: the connection calls this from its dispatch loop, between taking an
   * event and running it, where a message received synchronously would overtake that event.
   */
  resumeReading(): void {
    this.#paused = false;
    if (this.#held.length === 0) return void this.#socket.resume();
    if (this.#replayScheduled) return;
    this.#replayScheduled = true;
    process.nextTick(() => this.#replay());
  }

  /** Below the stream: pause() alone would let Node read one more chunk into its buffer, the bytes held back for. */
  holdBack(): void {
    this.#heldBack = true;
    this.#socket.pause();
    stopReading(this.#socket);
  }

  /** Read on as if never held back: flowing, unless the connection's held chunks fill the read-ahead. */
  release(): void {
    if (!this.#heldBack) return;
    this.#heldBack = false;
    if (this.#socket.destroyed || this.#heldBytes >= READ_AHEAD_BYTES) return;
    this.#socket.resume();
    startReading(this.#socket);
  }

  #replay(): void {
    this.#replayScheduled = false;
    while (!this.#paused && this.#held.length > 0 && !this.#socket.destroyed) {
      const chunk = this.#held.shift()!;
      this.#heldBytes -= chunk.length;
      this.#decode(chunk);
    }
    if (!this.#paused) this.#socket.resume();
  }

  /** The socket closed: what it held is received now, so that the connection's close drops and counts it. */
  receiveHeld(): void {
    const held = this.#held;
    this.#held = [];
    this.#heldBytes = 0;
    for (const chunk of held) this.#decode(chunk);
  }

  forget(): void {
    this.#host.incomplete.forget(this);
  }

  /** Its partial frame stalled or would break the budget: the stream cannot go on without those bytes. */
  abandon(err: HotlineError): void {
    this.#host.reportError(err, this.conn);
    this.closeInfo = { code: CLOSE_POLICY, reason: err.code === 'HOTLINE_E_FRAME_TIMEOUT' ? 'frame timeout' : 'partial frame budget' };
    this.#socket.destroy();
  }

  handoff(): HandoffSource {
    // The upgrade stops this socket below the stream: a release after this would read into the wrong process.
    this.#heldBack = false;
    // Held bytes follow the decoder's pending ones on the wire: the new process decodes both, in that order.
    const unconsumed = () => (this.#held.length === 0 ? this.#decoder.unconsumed() : Buffer.concat([this.#decoder.unconsumed(), ...this.#held]));
    return { kind: 'tcp', socket: this.#socket, framing: this.#framing.kind, unconsumed };
  }

  onData(chunk: Buffer): void {
    // Behind what is held, even once resumed: the held chunks are decoded first (#replay).
    if (!this.#paused && this.#held.length === 0) return this.#decode(chunk);
    this.#held.push(chunk);
    this.#heldBytes += chunk.length;
    if (this.#heldBytes >= READ_AHEAD_BYTES) this.#socket.pause();
  }

  #decode(chunk: Buffer): void {
    if (this.#decoder.write(chunk, this.#deliver)) {
      // Every byte of a chunk that ends inside a frame belongs to that frame: a read that leaves bytes pending is
      // progress for it.
      const pending = this.#decoder.pendingBytes;
      if (pending !== this.incompleteBytes) this.#host.incomplete.update(this, pending, true);
      else if (pending !== 0) this.incompleteSince = Date.now();
      return;
    }
    this.#host.incomplete.forget(this);
    const max = this.#host.limits.maxPayload;
    this.#host.reportError(
      new HotlineError('HOTLINE_E_PAYLOAD_TOO_LARGE', `connection ${this.conn.id}: a frame exceeds maxPayload (${max} bytes); closing`),
      this.conn,
    );
    this.closeInfo = { code: CLOSE_TOO_BIG, reason: 'message too big' };
    // The stream cannot be resynchronised after an oversized frame: stop reading and close now.
    this.#socket.pause();
    this.#socket.destroy();
  }
}

function socketOnData(this: net.Socket, chunk: Buffer): void {
  (this as SocketWithLink)[kLink].onData(chunk);
}

function socketOnError(this: net.Socket): void {
  const link = (this as SocketWithLink)[kLink];
  if (link.closeInfo.code === CLOSE_NORMAL) link.closeInfo = { code: CLOSE_ABNORMAL, reason: 'socket error' };
}

function socketOnClose(this: net.Socket, hadError: boolean): void {
  const link = (this as SocketWithLink)[kLink];
  if (hadError && link.closeInfo.code === CLOSE_NORMAL) link.closeInfo = { code: CLOSE_ABNORMAL, reason: 'socket error' };
  link.forget();
  link.receiveHeld();
  link.conn.closed(link.closeInfo);
}

const kLink = Symbol('hotline.link');
type SocketWithLink = net.Socket & { [kLink]: TcpLink };

export class TcpTransport implements Transport {
  #options: TcpListenOptions;
  #host: TransportHost;
  #framing: Framing;
  #tls: TlsMaterial | undefined;
  #server: net.Server | undefined;
  #address: ListenAddress | undefined;

  constructor(options: TcpListenOptions, host: TransportHost) {
    this.#options = options;
    this.#host = host;
    this.#framing = options.framing === 'length' ? lengthPrefixed : lines;
    this.#tls = options.tls && loadTls(options.tls, 'listen[].tls');
  }

  async start(): Promise<void> {
    const onConnection = (socket: net.Socket) => this.#onConnection(socket);
    // With TLS a connection exists once its handshake is done ('secureConnection'); the server bounds the handshake.
    const server = this.#tls
      ? tls.createServer({ ...this.#tls, noDelay: true, handshakeTimeout: this.#host.limits.handshakeTimeout }, onConnection)
      : net.createServer({ noDelay: true }, onConnection);
    this.#server = server;
    const { host, port } = await listen(server, this.#options.port ?? 0, this.#options.host ?? '127.0.0.1', this.#options.handle);
    this.#address = { transport: 'tcp', host, port, url: listenUrl('tcp', this.#tls !== undefined, host, port), framing: this.#framing.kind };
    if (this.#tls) this.#address.tls = true;
  }

  address(): ListenAddress {
    if (!this.#address) throw new HotlineError('HOTLINE_E_LISTEN', 'the TCP listener is not started');
    return this.#address;
  }

  async stopAccepting(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    this.#host.admit?.close();
    if (server?.listening) server.close();
  }

  /** The framing of this listener's streams. */
  get framing(): FramingKind {
    return this.#framing.kind;
  }

  /**
   * @internal For a process upgrade (src/handoff): stop listening but keep serving, so a new worker can take the
   * listener. The supervisor still holds the socket, so connects wait in the kernel backlog instead of being refused.
   */
  pauseAccepting(): void {
    const server = this.#server;
    // close() stops listening at once; its callback would wait for every connection to end, so it is not awaited.
    if (server?.listening) server.close();
  }

  /** @internal Listen again on a handle from the supervisor, after an aborted upgrade. */
  async resumeAccepting(handle: object): Promise<void> {
    const server = this.#server;
    if (!server || server.listening) return;
    await listen(server, 0, this.#options.host ?? '127.0.0.1', handle);
  }

  /**
   * @internal Adopt a socket moved from another process (src/handoff). `head` holds bytes the old process read but
   * had not decoded: they are decoded first. `makeConn` creates the connection with its carried state.
   */
  adopt(socket: net.Socket, head: Buffer, makeConn: (link: Link) => Connection): Connection {
    const link = new TcpLink(socket, this.#framing, this.#host);
    (socket as SocketWithLink)[kLink] = link;
    link.conn = makeConn(link);
    if (head.length > 0) link.onData(head);
    socket.on('data', socketOnData);
    socket.on('error', socketOnError);
    socket.on('close', socketOnClose);
    return link.conn;
  }

  #onConnection(socket: net.Socket): void {
    if (!this.#host.canAccept()) {
      this.#host.reportError(
        new HotlineError('HOTLINE_E_MAX_CONNECTIONS', `refused a TCP connection from ${socket.remoteAddress}: maxConnections (${this.#host.limits.maxConnections}) reached`),
      );
      socket.destroy();
      return;
    }
    const admit = this.#host.admit;
    const refused = admit?.check(socket.remoteAddress, socket);
    if (refused) return admit!.refuse(refused, socket.remoteAddress, socket, () => socket.destroy());
    const link = new TcpLink(socket, this.#framing, this.#host);
    (socket as SocketWithLink)[kLink] = link;
    link.conn = this.#host.accept(link);
    socket.on('data', socketOnData);
    socket.on('error', socketOnError);
    socket.on('close', socketOnClose);
    // An address already past its share of partial frames: not read until its turn (incomplete-frames.ts).
    this.#host.incomplete.opened(link);
  }
}
