/**
 * The private fields of ws 8.18.3 (pinned exactly in package.json) that hotline reads, in one place: the handoff
 * (src/handoff/ws-frames.ts) rebuilds a Receiver's parse state from them, and the transport reads how many bytes a
 * Receiver holds in a partial frame or an unfinished fragmented message (issue 9: those bytes are bounded). ws has no
 * public API for either (websockets/ws#823).
 */
import type net from 'node:net';
import type { WebSocket } from 'ws';

/** ws lib/receiver.js fields. */
export interface ReceiverInternals {
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
  _writableState: { length: number };
}

/** ws lib/websocket.js fields. */
export interface WsInternals {
  _receiver: ReceiverInternals | null;
  _socket: net.Socket | null;
  _closeFrameReceived: boolean;
  _closeFrameSent: boolean;
  _extensions: Record<string, unknown>;
  _protocol: string;
}

export function wsInternals(ws: WebSocket): WsInternals {
  return ws as unknown as WsInternals;
}

/** The TCP socket a WebSocket reads from; null before setSocket and after ws let go of it. */
export function wsSocket(ws: WebSocket): net.Socket | null {
  return wsInternals(ws)._socket;
}

/**
 * Bytes the Receiver holds that are not yet a delivered message: a partial frame (header or payload), the fragments
 * of an unfinished message, and chunks queued behind a busy parse. 0 at a message boundary.
 */
export function receiverPendingBytes(ws: WebSocket): number {
  const r = wsInternals(ws)._receiver;
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
  const r = wsInternals(ws)._receiver;
  return r !== null && (r._state !== GET_INFO || r._bufferedBytes > 0);
}
