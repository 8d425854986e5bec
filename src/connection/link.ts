/**
 * The small interface between a connection and its transport. The connection layer never touches a socket; the
 * transports (ws, tcp) implement this and call the connection back with what arrives.
 */
import type { HandoffSource } from '../handoff/handoff-source.js';
import type { MessageData, TransportKind } from '../plugin/contract.js';

export interface Link {
  readonly transport: TransportKind;
  readonly remoteAddress: string;
  /** Write one message. The transport frames it. */
  send(data: MessageData): void;
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
