/**
 * The private state of ws 8.18.3 (pinned exactly in package.json) that hotline reads and writes, in one place
 * (STYLE.md 13; test/structure/architecture.test.ts keeps it here, and checkInternals() in self-check.ts refuses to
 * start on another ws version or when a field below is missing). ws has no public API for either use
 * (websockets/ws#823):
 * - the handoff (src/handoff/ws-frames.ts) rebuilds a Receiver's parse state as wire bytes, and rebuilds a
 *   server-side WebSocket on a moved socket the way ws' own `completeUpgrade` does;
 * - the transport (src/transport/ws-guard.ts) reads how many bytes a Receiver holds in a partial frame or an
 *   unfinished fragmented message (issue 9: those bytes are bounded);
 * - a room delivery (src/rooms, issue 13) builds a frame once with ws' `Sender.frame` and writes it to each member's
 *   socket, when that member's Sender is idle (nothing queued behind a compression or a blob, no fragment open).
 * Upgrading ws means checking every field here against its lib/receiver.js and lib/websocket.js, with
 * test/handoff/ws-frames.test.ts and test/hostile/*.test.ts green.
 */
import type net from 'node:net';
import * as wsModule from 'ws';
import { WebSocket } from 'ws';

/** ws 8.18.3 lib/receiver.js fields. */
interface ReceiverInternals {
  _state: number;
  /** Raw bytes read and not yet parsed: a partial header, or the part of a frame's payload received so far. */
  _buffers: Buffer[];
  _bufferedBytes: number;
  /** The opcode of the fragmented message under way, 0 when none is. */
  _fragmented: number;
  /** Payloads of the fragments already received of that message. */
  _fragments: Buffer[];
  /** Bytes in `_fragments` (uncompressed: permessage-deflate is off on hotline's servers). 0 between messages. */
  _messageLength: number;
  _fin: boolean;
  _opcode: number;
  _payloadLength: number;
  _masked: boolean;
  _mask: Buffer | undefined;
  _compressed: boolean;
  _errored: boolean;
  /** The Writable state of the Receiver: `length` counts chunks queued behind a busy parse. */
  _writableState: { length: number };
  write(b: Buffer): boolean;
}

/** ws 8.18.3 lib/sender.js fields. */
interface SenderInternals {
  /** DEFAULT (0), DEFLATING (1) or GET_BLOB_DATA (2): only in DEFAULT does a write go straight to the socket. */
  _state: number;
  /** Sends waiting for the state to come back to DEFAULT. */
  _queue: unknown[];
  /** False while a fragmented message is being sent. */
  _firstFragment: boolean;
}

/** ws 8.18.3 lib/websocket.js fields. */
interface WsInternals {
  _sender: SenderInternals | null;
  _receiver: ReceiverInternals | null;
  _socket: net.Socket | null;
  _closeFrameReceived: boolean;
  _closeFrameSent: boolean;
  _extensions: Record<string, unknown>;
  _protocol: string;
  /** Set by the constructor: true for `new WebSocket(null, …)`, false for a client. Decides masking both ways. */
  _isServer: boolean;
  /** A client's URL (`ws.url`); set by initAsClient only. */
  _url?: string;
  setSocket(s: net.Socket, head: Buffer, o: Record<string, unknown>): void;
}

/** The Receiver fields read, for checkInternals(): on a fresh `new Receiver()` each is an own property. */
export const RECEIVER_FIELDS = [
  '_state',
  '_buffers',
  '_bufferedBytes',
  '_fragmented',
  '_fragments',
  '_messageLength',
  '_fin',
  '_opcode',
  '_payloadLength',
  '_masked',
  '_mask',
  '_compressed',
  '_errored',
  '_writableState',
] as const;

/** The WebSocket fields read or written, for checkInternals(): own properties of `new WebSocket(null, …)`. */
export const WEBSOCKET_FIELDS = ['_receiver', '_sender', '_socket', '_closeFrameReceived', '_closeFrameSent', '_extensions', '_protocol', '_isServer'] as const;

/** The Sender fields read, for checkInternals(): own properties of a fresh `new Sender()`. */
export const SENDER_FIELDS = ['_state', '_queue', '_firstFragment'] as const;
/** ws 8.18.3 lib/sender.js: the Sender state in which `sendFrame` writes to the socket at once. */
const SENDER_DEFAULT = 0;

function internals(ws: WebSocket): WsInternals {
  return ws as unknown as WsInternals;
}

/** The TCP socket a WebSocket reads from (`_socket`); null before setSocket and after ws let go of it. */
export function socketOf(ws: WebSocket): net.Socket | null {
  return internals(ws)._socket;
}

/**
 * Bytes the Receiver holds that are not yet a delivered message: a partial frame (header or payload), the fragments
 * of an unfinished message, and chunks queued behind a busy parse. 0 at a message boundary. On every read of every
 * WebSocket (ws-guard.ts), so it reads the fields directly and allocates nothing.
 */
export function receiverPendingBytes(ws: WebSocket): number {
  const r = internals(ws)._receiver;
  if (!r) return 0;
  return r._bufferedBytes + r._messageLength + r._writableState.length;
}

/** ws 8.18.3 lib/receiver.js parse states (GET_MASK = 3 needs no name here). */
export const GET_INFO = 0;
export const GET_PAYLOAD_LENGTH_16 = 1;
export const GET_PAYLOAD_LENGTH_64 = 2;
export const GET_DATA = 4;

/** True when the Receiver is inside a frame (header or payload), false at a frame boundary. */
export function receiverMidFrame(ws: WebSocket): boolean {
  const r = internals(ws)._receiver;
  return r !== null && (r._state !== GET_INFO || r._bufferedBytes > 0);
}

/** A copy of a Receiver's parse state under public names, for the handoff's capture (ws-frames.ts). */
export interface ReceiverState {
  /** `_state`: GET_INFO, GET_PAYLOAD_LENGTH_16, … */
  state: number;
  /** `_buffers`: raw bytes read and not yet parsed. */
  buffers: Buffer[];
  /** `_fragmented`: the opcode of the fragmented message under way, 0 when none is. */
  fragmented: number;
  /** `_fragments`: payloads of the fragments already received of that message. */
  fragments: Buffer[];
  fin: boolean;
  opcode: number;
  /** `_payloadLength`: in GET_PAYLOAD_LENGTH_16/64 still the 7-bit marker (126 or 127). */
  payloadLength: number;
  masked: boolean;
  mask: Buffer | undefined;
  errored: boolean;
  /** `_writableState.length`: chunks queued behind a busy parse. */
  queued: number;
}

/** The Receiver's parse state now; null when the WebSocket has no Receiver (before setSocket, after close). */
export function receiverState(ws: WebSocket): ReceiverState | null {
  const r = internals(ws)._receiver;
  if (!r) return null;
  return {
    state: r._state,
    buffers: r._buffers,
    fragmented: r._fragmented,
    fragments: r._fragments,
    fin: r._fin,
    opcode: r._opcode,
    payloadLength: r._payloadLength,
    masked: r._masked,
    mask: r._mask,
    errored: r._errored,
    queued: r._writableState.length,
  };
}

/** True once a close frame was received or sent (`_closeFrameReceived`, `_closeFrameSent`). */
export function closeFrameExchanged(ws: WebSocket): boolean {
  const w = internals(ws);
  return w._closeFrameReceived || w._closeFrameSent;
}

/** How many extensions were negotiated (`_extensions`: permessage-deflate is the only one ws knows). */
export function extensionCount(ws: WebSocket): number {
  return Object.keys(internals(ws)._extensions).length;
}

/** The negotiated subprotocol (`_protocol`), '' when none. */
export function protocolOf(ws: WebSocket): string {
  return internals(ws)._protocol;
}

/**
 * A server-side WebSocket on a socket that is already upgraded, the way ws' own `completeUpgrade` does it:
 * `new WebSocket(null, undefined, options)`, `_protocol`, then `setSocket`. `options` must be the server's real
 * options: with `{}`, autoPong is off and the close timeout undefined.
 */
export function serverWsOn(socket: net.Socket, head: Buffer, protocol: string, options: Record<string, unknown>): WebSocket {
  const Ctor = WebSocket as unknown as new (address: null, protocols: undefined, options: Record<string, unknown>) => WebSocket;
  const ws = new Ctor(null, undefined, options);
  if (protocol) internals(ws)._protocol = protocol;
  internals(ws).setSocket(socket, head, {
    allowSynchronousEvents: options.allowSynchronousEvents,
    maxPayload: options.maxPayload,
    skipUTF8Validation: options.skipUTF8Validation,
  });
  return ws;
}

/**
 * A client-side WebSocket on a socket whose handshake another process completed (issue 15: an outbound link moved by
 * a process upgrade). ws has no such path: it is `new WebSocket(null, …)` turned client before `setSocket`, so the
 * Sender masks what it sends and the Receiver expects unmasked frames, as after ws' own client handshake
 * (initAsClient: autoPong on, no extension, since links never offer permessage-deflate). The socket must be paused:
 * setSocket only adds listeners, so nothing is read before the caller resumes it.
 */
export function clientWsOn(socket: net.Socket, url: string, options: { maxPayload: number }): WebSocket {
  const Ctor = WebSocket as unknown as new (address: null, protocols: undefined, options: Record<string, unknown>) => WebSocket;
  const ws = new Ctor(null, undefined, { autoPong: true });
  const w = internals(ws);
  w._isServer = false;
  w._url = url;
  w.setSocket(socket, Buffer.alloc(0), { allowSynchronousEvents: true, maxPayload: options.maxPayload, skipUTF8Validation: false });
  return ws;
}

/** True for a WebSocket that masks what it sends (a client). */
export function isClientWs(ws: WebSocket): boolean {
  return !internals(ws)._isServer;
}

/** Parse bytes as if they had just been read from the socket (ws' socketOnData, without touching the socket). */
export function receiverWrite(ws: WebSocket, bytes: Buffer): void {
  internals(ws)._receiver!.write(bytes);
}

type FrameOptions = { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean };
const frameOf = (wsModule as unknown as { Sender: { frame(data: Buffer | string, o: FrameOptions): Array<Buffer | string> } }).Sender.frame;
const TEXT: FrameOptions = { fin: true, opcode: 1, mask: false, readOnly: false, rsv1: false };
const BINARY: FrameOptions = { fin: true, opcode: 2, mask: false, readOnly: false, rsv1: false };

/**
 * One whole server-to-client frame (unmasked, uncompressed: hotline's servers never negotiate permessage-deflate) of
 * a message, header and payload in one buffer, built by ws' own `Sender.frame` so it is byte for byte what
 * `ws.send(data)` writes. One buffer: one socket write per member instead of ws' cork, two writes, uncork.
 */
export function serverFrame(data: string | Uint8Array): Buffer {
  const payload = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const [header, body] = frameOf(payload, typeof data === 'string' ? TEXT : BINARY) as [Buffer, Buffer];
  return Buffer.concat([header, body], header.length + body.length);
}

/**
 * Write a frame built by serverFrame() to an open WebSocket's socket, where `ws.send` would have written it: true
 * when written. False, and nothing written, when ws would not write at once (its Sender queues behind a compression
 * or a blob, or sends a fragmented message) or the WebSocket is not open: the caller then uses `ws.send`, which keeps
 * the order and the closed-socket rules. `beforeWrite` gets the socket first (the transport corks it for the turn).
 */
export function writeServerFrame(ws: WebSocket, frame: Buffer, beforeWrite?: (socket: net.Socket) => void): boolean {
  if (ws.readyState !== WebSocket.OPEN) return false;
  const w = internals(ws);
  const sender = w._sender;
  const socket = w._socket;
  if (!sender || !socket || sender._state !== SENDER_DEFAULT || sender._queue.length > 0 || !sender._firstFragment) return false;
  beforeWrite?.(socket);
  socket.write(frame);
  return true;
}
