/**
 * Moving a live `ws` WebSocket between processes. `ws` has no public API to adopt a socket (websockets/ws#823), so
 * this file reads and rebuilds private state of ws 8.18.3 (pinned exactly in package.json), all of it through
 * src/internals/ws-internals.ts; the regression test test/handoff/ws-frames.test.ts splits frames at random byte
 * offsets across a move.
 *
 * Capturing does not wait for a frame boundary: the Receiver's parse state (header fields already consumed, a
 * fragmented message already received) is turned back into wire bytes, and those bytes plus the raw bytes the
 * Receiver still buffers become `head` for a fresh Receiver on the other side. Frames are re-masked with a zero key,
 * so the unmasked fragments ws keeps can be replayed as they are. Throwing that state away instead made every client
 * close with 1002 (DESIGN.md §6).
 */
import type net from 'node:net';
import { WebSocket } from 'ws';
import {
  GET_DATA,
  GET_INFO,
  GET_PAYLOAD_LENGTH_16,
  GET_PAYLOAD_LENGTH_64,
  type ReceiverState,
  closeFrameExchanged,
  extensionCount,
  isClientWs,
  protocolOf,
  receiverState,
  receiverWrite,
  serverWsOn,
  socketOf,
} from '../internals/ws-internals.js';

/** Why a WebSocket cannot be captured now: `retry` may pass later, `never` will not. */
export type CaptureRefusal = { retry: string } | { never: string };

/** The socket and the bytes a new Receiver must parse first. */
export interface WsCapture {
  socket: net.Socket;
  head: Buffer;
  protocol: string;
}

/**
 * Capture a paused, flushed WebSocket. Call outside any ws callback: inside a `message` handler the frame being
 * delivered would be duplicated (DESIGN.md §6).
 */
export function captureWs(ws: WebSocket): WsCapture | CaptureRefusal {
  const socket = socketOf(ws);
  const r = receiverState(ws);
  if (ws.readyState !== WebSocket.OPEN || !socket || !r || closeFrameExchanged(ws)) return { never: 'closing' };
  if (extensionCount(ws) > 0) return { never: 'permessage-deflate' };
  if (r.errored) return { never: 'protocol error' };
  if (r.state > GET_DATA || r.queued > 0) return { retry: 'receiver busy' };
  if (socket.readableLength > 0) return { retry: 'socket buffer' };
  if (ws.bufferedAmount > 0) return { retry: 'writes pending' };
  return { socket, head: receiverBytes(r, isClientWs(ws)), protocol: protocolOf(ws) };
}

/**
 * The wire bytes equivalent to what the Receiver has consumed but not yet delivered, plus what it buffers. A client's
 * Receiver (an outbound link, issue 15) refuses masked frames, so its fragments are replayed unmasked.
 */
export function receiverBytes(r: ReceiverState, client = false): Buffer {
  const parts: Buffer[] = [];
  if (r.fragmented !== 0) {
    // The fragments already received of an open message: one non-final frame of the message's opcode.
    parts.push(frame(false, r.fragmented, Buffer.concat(r.fragments), !client));
  }
  if (r.state !== GET_INFO) {
    // Inside a fragmented message, a data frame in progress is a continuation (opcode 0); control frames keep theirs.
    const opcode = r.opcode >= 0x08 ? r.opcode : r.fragmented !== 0 ? 0 : r.opcode;
    const b0 = (r.fin ? 0x80 : 0) | opcode;
    const maskBit = r.masked ? 0x80 : 0;
    if (r.state === GET_PAYLOAD_LENGTH_16 || r.state === GET_PAYLOAD_LENGTH_64) {
      // payloadLength still holds the 7-bit marker (126 or 127); the extended length bytes are in buffers.
      parts.push(Buffer.from([b0, maskBit | r.payloadLength]));
    } else {
      parts.push(header(b0, maskBit, r.payloadLength));
      if (r.state === GET_DATA && r.masked) parts.push(r.mask!);
    }
  }
  for (const b of r.buffers) parts.push(b);
  return Buffer.concat(parts);
}

function header(b0: number, maskBit: number, len: number): Buffer {
  if (len < 126) return Buffer.from([b0, maskBit | len]);
  if (len < 0x10000) {
    const h = Buffer.allocUnsafe(4);
    h[0] = b0;
    h[1] = maskBit | 126;
    h.writeUInt16BE(len, 2);
    return h;
  }
  const h = Buffer.allocUnsafe(10);
  h[0] = b0;
  h[1] = maskBit | 127;
  h.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
  h.writeUInt32BE(len >>> 0, 6);
  return h;
}

/** A client-to-server frame masked with the zero key (the payload bytes stay as they are), or an unmasked one. */
function frame(fin: boolean, opcode: number, payload: Buffer, masked = true): Buffer {
  const b0 = (fin ? 0x80 : 0) | opcode;
  if (!masked) return Buffer.concat([header(b0, 0, payload.length), payload]);
  return Buffer.concat([header(b0, 0x80, payload.length), Buffer.alloc(4), payload]);
}

/**
 * Rebuild a server-side WebSocket on a moved socket, the way ws' own `completeUpgrade` does. `options` must be the
 * server's real options: with `{}`, autoPong is off and the close timeout undefined.
 */
export function rebuildWs(socket: net.Socket, head: Buffer, protocol: string, options: Record<string, unknown>): WebSocket {
  return serverWsOn(socket, head, protocol, options);
}

/** Parse bytes as if they had just been read from the socket (ws' socketOnData, without touching the socket). */
export function feedReceiver(ws: WebSocket, bytes: Buffer): void {
  receiverWrite(ws, bytes);
}
