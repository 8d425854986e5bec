/**
 * The per-socket bounds of one server-side WebSocket, plain or session (issue 9, item 5): after each read, how many
 * bytes its Receiver holds in a partial frame or an unfinished fragmented message (counted against the host's
 * partial-frame budget and timeout), and whether it answers pings. 500 sockets that each left a fragmented message
 * unfinished took 605 MB before these bounds.
 */
import type net from 'node:net';
import type { WebSocket } from 'ws';
import type { Connection } from '../connection/connection.js';
import { CLOSE_POLICY, POLICY_CLOSE_GRACE_MS } from '../connection/close-codes.js';
import { HotlineError } from '../errors.js';
import type { IncompleteFrames, IncompleteHolder } from './incomplete-frames.js';
import type { Pingable, WsHeartbeat } from './ws-heartbeat.js';
import { receiverMidFrame, receiverPendingBytes, socketOf } from '../internals/ws-internals.js';
import { startReading, stopReading } from '../internals/node-internals.js';

const kGuard = Symbol('hotline.wsGuard');
type WithGuard = { [kGuard]: WsGuard };

export interface WsGuardDeps {
  incomplete: IncompleteFrames;
  heartbeat: WsHeartbeat;
  reportError(err: HotlineError, conn?: Connection): void;
}

// Shared listeners, the ws `socketOnClose` pattern: no closure per socket on the read path.
function guardOnData(this: net.Socket): void {
  (this as unknown as WithGuard)[kGuard].afterRead();
}

function guardOnPong(this: WebSocket): void {
  (this as unknown as WithGuard)[kGuard].awaitingPong = false;
}

function guardOnClose(this: WebSocket): void {
  (this as unknown as WithGuard)[kGuard].dispose();
}

export class WsGuard implements IncompleteHolder, Pingable {
  readonly ws: WebSocket;
  /** The connection of a plain WebSocket, for the error report; a session socket has none of its own. */
  conn: Connection | undefined;
  incompleteBytes = 0;
  incompleteSince = 0;
  awaitingPong = false;
  readonly remoteAddress: string;
  #socket: net.Socket | null;
  #deps: WsGuardDeps;
  #grace: NodeJS.Timeout | undefined;
  #disposed = false;
  /** Closed for its partial frame: what it still sends in the grace is not counted again. */
  #abandoned = false;
  /** Held back for its address' share of partial frames (incomplete-frames.ts), and not released since. */
  #heldBack = false;

  /** Start guarding `ws`: after ws set its socket up, so ws' own data listener runs before ours. */
  constructor(ws: WebSocket, deps: WsGuardDeps) {
    this.ws = ws;
    this.#deps = deps;
    this.#socket = socketOf(ws);
    this.remoteAddress = this.#socket?.remoteAddress ?? '';
    (ws as unknown as WithGuard)[kGuard] = this;
    ws.on('pong', guardOnPong);
    ws.on('close', guardOnClose);
    if (this.#socket) {
      (this.#socket as unknown as WithGuard)[kGuard] = this;
      this.#socket.on('data', guardOnData);
    }
    deps.heartbeat.add(this);
    // An address already past its share: not read from the start (the upgrade request was read; nothing after it).
    deps.incomplete.opened(this);
    // Bytes a moved WebSocket was rebuilt with (src/handoff) were parsed before any read of ours.
    this.afterRead();
  }

  /** After ws parsed a chunk: count what its Receiver still holds. */
  afterRead(): void {
    if (this.#disposed || this.#abandoned) return;
    const bytes = receiverPendingBytes(this.ws);
    if (bytes === 0 && this.incompleteBytes === 0) return;
    // A read that ends inside a frame added bytes to it; one that ends at a frame boundary (a ping between two
    // fragments, say) did not, even while a fragmented message stays open.
    this.#deps.incomplete.update(this, bytes, bytes !== this.incompleteBytes || receiverMidFrame(this.ws));
  }

  abandon(err: HotlineError): void {
    this.#abandoned = true;
    this.#deps.reportError(err, this.conn);
    this.#closeThenCut(err.code === 'HOTLINE_E_FRAME_TIMEOUT' ? 'frame timeout' : 'partial frame budget');
  }

  get paused(): boolean {
    return this.#heldBack || this.ws.isPaused;
  }

  /** Below the stream: pause() alone would let Node read one more chunk into its buffer, the bytes held back for. */
  holdBack(): void {
    if (!this.#socket) return;
    this.#heldBack = true;
    this.#socket.pause();
    stopReading(this.#socket);
  }

  /** Not while ws itself is paused: that is the connection's backpressure or an upgrade capturing the socket. */
  release(): void {
    this.#heldBack = false;
    if (this.#disposed || this.ws.isPaused || !this.#socket) return;
    this.#socket.resume();
    startReading(this.#socket);
  }

  unresponsive(): void {
    this.#deps.reportError(new HotlineError('HOTLINE_E_PONG_TIMEOUT', 'a WebSocket client did not answer a ping in time; cut off'), this.conn);
    // No close handshake: a peer that does not answer pings will not answer a close frame either.
    this.ws.terminate();
  }

  /** The socket closed or moved to another process: let go of its budget entry, its pings and its listener. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    clearTimeout(this.#grace);
    this.#deps.incomplete.forget(this);
    this.#deps.heartbeat.delete(this);
    this.#socket?.off('data', guardOnData);
    this.ws.off('pong', guardOnPong);
    this.ws.off('close', guardOnClose);
  }

  /**
   * Close with 1008, and destroy the socket if the close handshake does not finish in the grace: the peer's close
   * frame would sit behind the partial frame the Receiver is waiting on, so it may never be parsed.
   */
  #closeThenCut(reason: string): void {
    this.ws.close(CLOSE_POLICY, reason);
    this.#grace ??= setTimeout(() => this.ws.terminate(), POLICY_CLOSE_GRACE_MS);
    this.#grace.unref();
  }
}
