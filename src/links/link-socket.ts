/**
 * The wire under a link (issue 15): one connect attempt to the upstream, as a small interface the link's state
 * machine drives. tcp:// and tls:// cut the stream with hotline's framings (src/framing/), so every upstream byte is
 * validated the way a client's is; ws:// and wss:// use `ws`, with maxPayload enforced by its receiver.
 *
 * A LinkSocket reports `opened` at most once and `ended` exactly once, whatever happened (refused, timed out, reset,
 * oversized frame, closed by us): the link never has to guess whether a socket is still alive.
 */
import net from 'node:net';
import tls from 'node:tls';
import { type ClientOptions, type RawData, WebSocket } from 'ws';
import type { ErrorCode } from '../errors.js';
import { lengthPrefixed } from '../framing/length-prefixed.js';
import { lines } from '../framing/lines.js';
import type { Decoder } from '../framing/framing.js';
import { clientWsOn, receiverWrite, socketOf } from '../internals/ws-internals.js';
import type { MessageData } from '../plugin/contract.js';
import type { LinkSpec } from './link-options.js';

/** What a socket tells its link. */
export interface LinkSocketEvents {
  opened(): void;
  /** One complete message from the upstream; `bytes` is what it cost on the wire. */
  message(data: MessageData, bytes: number): void;
  /** The attempt or the connection ended; `code` when it ended on an error. Called once. */
  ended(reason: string, code?: ErrorCode): void;
}

export interface LinkSocket {
  /** Write one message; returns the bytes it put on the wire. Only after `opened`. */
  write(data: MessageData): number;
  /** Bytes written but not yet flushed to the kernel. */
  readonly buffered: number;
  /** Stop and restart reading (the link's inbound queue is full / drained). */
  pause(): void;
  resume(): void;
  /** Close it; `ended` follows (once). Idempotent. */
  close(): void;
  /**
   * What a process upgrade moves (src/handoff/link-export.ts): the raw TCP socket under a tcp:// or ws:// link, with
   * the bytes read but not yet a message (the framing's partial frame; for ws:// the Receiver holds them, read
   * through ws-frames.ts). Undefined for tls:// and wss://: a TLS session lives in this process's OpenSSL and its
   * descriptor alone is useless elsewhere (nodejs/node#4037).
   */
  handoff(): LinkSocketSource | undefined;
  /**
   * Let go of a socket another process now owns: no event, no FIN (destroy() closes only this process's descriptor).
   * `ended` is never called after it.
   */
  detach(): void;
  /** An adopted socket: parse `head` (the bytes the old process had read) as if just read. Before resume(). */
  consume(head: Buffer): void;
}

/** See LinkSocket#handoff. */
export type LinkSocketSource =
  | { kind: 'stream'; socket: net.Socket; unconsumed(): Buffer }
  | { kind: 'ws'; ws: WebSocket; socket: net.Socket };

/** A live socket handed over by the old process at an upgrade (src/handoff/link-adopt.ts), paused. */
export type AdoptedWire = { kind: 'stream'; socket: net.Socket } | { kind: 'ws'; socket: net.Socket };

/** Opens one attempt. The deps seam: tests may pass a fake connector. */
export type LinkConnector = (spec: LinkSpec, events: LinkSocketEvents) => LinkSocket;

export const connectLink: LinkConnector = (spec, events) =>
  spec.scheme === 'ws' || spec.scheme === 'wss' ? new WsLinkSocket(spec, events) : new StreamLinkSocket(spec, events);

/**
 * The LinkSocket of an adopted wire: already open (`opened` is never called), paused until resume(). A ws:// link's
 * WebSocket is rebuilt client-side on the socket the way ws' own handshake completes (ws-internals.ts).
 */
export function adoptLinkSocket(spec: LinkSpec, events: LinkSocketEvents, wire: AdoptedWire): LinkSocket {
  return wire.kind === 'ws' ? new WsLinkSocket(spec, events, wire.socket) : new StreamLinkSocket(spec, events, wire.socket);
}

/** Close this process's descriptor of a socket another process holds too: listeners off, no FIN, no event. */
function letGo(socket: net.Socket): void {
  socket.removeAllListeners();
  socket.on('error', () => undefined);
  socket.destroy();
}

function byteLength(data: MessageData): number {
  return typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
}

/** tcp:// and tls://: a net or TLS socket with a framing decoder. */
class StreamLinkSocket implements LinkSocket {
  #socket: net.Socket;
  #decoder: Decoder;
  #encode: (data: MessageData) => Buffer | string;
  #timer: NodeJS.Timeout | undefined;
  #ended = false;
  #error: { reason: string; code?: ErrorCode } | undefined;
  #spec: LinkSpec;
  #events: LinkSocketEvents;

  constructor(spec: LinkSpec, events: LinkSocketEvents, adopted?: net.Socket) {
    const framing = spec.framing === 'length' ? lengthPrefixed : lines;
    this.#spec = spec;
    this.#events = events;
    this.#decoder = framing.createDecoder(spec.maxPayload);
    this.#encode = framing.encode;
    const onOpen = () => {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#socket.setNoDelay(true);
      events.opened();
    };
    if (adopted) {
      this.#socket = adopted;
    } else {
      this.#socket =
        spec.scheme === 'tls'
          ? tls.connect({ host: spec.host, port: spec.port, ca: spec.ca, servername: spec.servername ?? (net.isIP(spec.host) ? undefined : spec.host) }, onOpen)
          : net.connect({ host: spec.host, port: spec.port }, onOpen);
      this.#timer = setTimeout(() => this.#fail(`no connection within ${spec.connectTimeout} ms`, 'HOTLINE_E_LINK_CONNECT'), spec.connectTimeout);
    }
    this.#socket.on('data', (chunk: Buffer) => this.#read(chunk));
    this.#socket.on('error', (err) => {
      // Before the connect it is a failed attempt; after, a lost connection (a reset), which carries no code.
      if (this.#socket.connecting || this.#timer !== undefined) this.#error ??= { reason: err.message, code: 'HOTLINE_E_LINK_CONNECT' };
      else this.#error ??= { reason: err.message };
    });
    this.#socket.on('close', () => {
      clearTimeout(this.#timer);
      if (this.#ended) return;
      this.#ended = true;
      if (this.#error) events.ended(this.#error.reason, this.#error.code);
      else events.ended('the upstream closed the connection');
    });
  }

  #read(chunk: Buffer): void {
    if (this.#error) return;
    const spec = this.#spec;
    const ok = this.#decoder.write(chunk, (data) => this.#events.message(data, byteLength(data)));
    if (!ok) this.#fail(`the upstream sent a ${spec.framing} frame over maxPayload (${spec.maxPayload} bytes)`, 'HOTLINE_E_LINK_FRAME');
  }

  #fail(reason: string, code: ErrorCode): void {
    this.#error ??= { reason, code };
    this.#socket.destroy();
  }

  handoff(): LinkSocketSource | undefined {
    if (this.#socket instanceof tls.TLSSocket || this.#ended || this.#error) return undefined;
    const decoder = this.#decoder;
    return { kind: 'stream', socket: this.#socket, unconsumed: () => decoder.unconsumed() };
  }

  detach(): void {
    this.#ended = true;
    clearTimeout(this.#timer);
    letGo(this.#socket);
  }

  consume(head: Buffer): void {
    if (head.length > 0) this.#read(head);
  }

  write(data: MessageData): number {
    const bytes = this.#encode(data);
    this.#socket.write(bytes);
    return typeof bytes === 'string' ? Buffer.byteLength(bytes) : bytes.length;
  }

  get buffered(): number {
    return this.#socket.writableLength;
  }

  pause(): void {
    this.#socket.pause();
  }

  resume(): void {
    this.#socket.resume();
  }

  close(): void {
    this.#error ??= { reason: 'closed by the host', code: 'HOTLINE_E_LINK_CLOSED' };
    this.#socket.destroy();
  }
}

/** ws:// and wss://: a `ws` client; text frames arrive as strings, binary ones as bytes. */
class WsLinkSocket implements LinkSocket {
  #ws: WebSocket;
  #ended = false;
  #error: { reason: string; code?: ErrorCode } | undefined;

  constructor(spec: LinkSpec, events: LinkSocketEvents, adopted?: net.Socket) {
    this.#ws = adopted
      ? clientWsOn(adopted, spec.url, { maxPayload: spec.maxPayload })
      : new WebSocket(spec.url, {
          maxPayload: spec.maxPayload,
          handshakeTimeout: spec.connectTimeout,
          perMessageDeflate: false,
          ca: spec.ca,
          // ws hands its options to https.request, which takes servername (its ClientOptions type does not list it).
          ...(spec.servername !== undefined && { servername: spec.servername }),
        } as ClientOptions);
    if (!adopted) this.#ws.on('open', () => events.opened());
    this.#ws.on('message', (raw: RawData, isBinary: boolean) => {
      const buf = Array.isArray(raw) ? Buffer.concat(raw) : Buffer.isBuffer(raw) ? raw : Buffer.from(raw);
      events.message(isBinary ? new Uint8Array(buf) : buf.toString('utf8'), buf.length);
    });
    this.#ws.on('error', (err: Error & { code?: string }) => {
      const frame = err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' || (err.code?.startsWith('WS_ERR_') ?? false);
      this.#error ??= { reason: err.message, code: frame ? 'HOTLINE_E_LINK_FRAME' : 'HOTLINE_E_LINK_CONNECT' };
    });
    this.#ws.on('close', (code: number, reason: Buffer) => {
      if (this.#ended) return;
      this.#ended = true;
      if (this.#error) events.ended(this.#error.reason, this.#error.code);
      else events.ended(`the upstream closed the connection (${code}${reason.length ? ' ' + reason.toString() : ''})`);
    });
  }

  handoff(): LinkSocketSource | undefined {
    const socket = socketOf(this.#ws);
    if (this.#ended || this.#error || !socket || socket instanceof tls.TLSSocket || this.#ws.readyState !== WebSocket.OPEN) return undefined;
    return { kind: 'ws', ws: this.#ws, socket };
  }

  detach(): void {
    this.#ended = true;
    this.#ws.removeAllListeners();
    this.#ws.on('error', () => undefined);
    const socket = socketOf(this.#ws);
    if (socket) letGo(socket);
  }

  consume(head: Buffer): void {
    // A protocol error in the head surfaces as the Receiver's 'error' (HOTLINE_E_LINK_FRAME) and a close, as a bad
    // frame read from the socket would.
    if (head.length > 0) receiverWrite(this.#ws, head);
  }

  write(data: MessageData): number {
    this.#ws.send(data);
    return byteLength(data);
  }

  get buffered(): number {
    return this.#ws.bufferedAmount;
  }

  pause(): void {
    this.#ws.pause();
  }

  resume(): void {
    this.#ws.resume();
  }

  close(): void {
    this.#error ??= { reason: 'closed by the host', code: 'HOTLINE_E_LINK_CLOSED' };
    // terminate(), not close(): a link closed for good owes the upstream no closing handshake wait.
    this.#ws.terminate();
  }
}
