/**
 * The small interface between a connection and its transport. The connection layer never touches a socket; the
 * transports (ws, tcp) implement this and call the connection back with what arrives.
 */
import type net from 'node:net';
import type { WebSocket } from 'ws';
import type { FramingKind } from '../framing/framing.js';
import type { MessageData, TransportKind } from '../plugin/contract.js';
import type { Handshake } from './handshake.js';
import type { PreparedMessage } from '../rooms/prepared-message.js';

/**
 * What a link exposes of its live connection so a process upgrade can move it: the socket and what is needed to
 * rebuild its parser on the other side. Only plain `net.Socket`s qualify (TLS cannot move: nodejs/node#4037).
 */
export type HandoffSource =
  | { kind: 'ws'; ws: WebSocket }
  | {
      kind: 'tcp';
      socket: net.Socket;
      framing: FramingKind;
      /** Bytes read from the socket but not yet decoded into a message. */
      unconsumed(): Buffer;
    };

export type { Handshake } from './handshake.js';

export interface Link {
  readonly transport: TransportKind;
  readonly remoteAddress: string;
  /** issue 12: the upgrade request of a WebSocket, for a canary's `match`. */
  readonly handshake?: Handshake;
  /** Write one message. The transport frames it. */
  send(data: MessageData): void;
  /**
   * Write a message prepared once for many connections (a room delivery): its frame in this link's wire format, built
   * by the first link of that format (src/rooms/prepared-message.ts). Absent: the connection falls back to `send`.
   */
  sendPrepared?(msg: PreparedMessage): void;
  /** Close gracefully: WS close frame with `code`, TCP end. */
  close(code: number, reason: string): void;
  /** Close now, without a handshake. */
  terminate(): void;
  /** Bytes queued in user space and not yet handed to the kernel. */
  readonly bufferedAmount: number;
  /** The socket behind the link, for a process upgrade (src/handoff). Absent when the link cannot move. */
  handoff?(): HandoffSource;
  /**
   * Stop reading from the socket: the connection has `maxQueuedMessages` waiting for its handler. The kernel's
   * buffers then push back on the client (TCP flow control), so nothing is lost. Idempotent.
   */
  pauseReading(): void;
  /** Read again once the queue is down to half. Idempotent. */
  resumeReading(): void;
  /** The connection moved to another process: drop every timer and budget entry this link holds. */
  forget?(): void;
}
