/**
 * Held refusals (issue 9, R2): a handshake refused for its address' rate is answered after `delayMs`, not at once.
 *
 * Why: a client that retries the moment it is refused turns a refusal into a loop, and each turn of that loop costs the
 * host an accept, an HTTP parse and an answer (measured: about 2,000 refusals a second from one address of 20
 * concurrent retry loops, the largest part of what a hello-then-drop client costs the normal ones). Held, the same
 * client waits out its own refusals: it gets `concurrency` tries per `delayMs`, whatever its loop does. The delay is
 * the `Retry-After` the refusal announces, so a well-behaved client loses nothing by it.
 *
 * Bounds: at most `maxHeld` sockets are held at once, in all; past that a refusal is answered at once (the caller's
 * `hold` returns false). Held sockets are counted against their address' `maxConnectionsPerIp` by the caller
 * (admission.ts), so one address cannot fill the hold. A held socket is not read; one that closes meanwhile is dropped
 * from the hold without an answer.
 *
 * One timer for all: the delay is the same for every socket, so arrival order is deadline order and the queue is FIFO.
 */
import { Fifo } from '../collections/fifo.js';

export interface HoldableSocket {
  readonly destroyed: boolean;
  pause(): unknown;
}

export interface RefusalHoldDeps {
  /** Milliseconds, monotonic. */
  now(): number;
  setTimer(fn: () => void, ms: number): { unref?(): unknown };
  clearTimer(timer: unknown): void;
}

const REAL_DEPS: RefusalHoldDeps = {
  now: () => performance.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (t) => clearTimeout(t as NodeJS.Timeout),
};

interface Held {
  socket: HoldableSocket;
  answer: () => void;
  due: number;
}

export class RefusalHold {
  readonly delayMs: number;
  readonly maxHeld: number;
  #deps: RefusalHoldDeps;
  /** Held sockets in order of their due time (one delay for all, so arrival order). */
  #queue = new Fifo<Held>();
  #timer: unknown;
  #closed = false;

  constructor(delayMs: number, maxHeld: number, deps: RefusalHoldDeps = REAL_DEPS) {
    this.delayMs = delayMs;
    this.maxHeld = maxHeld;
    this.#deps = deps;
  }

  /** Sockets held now (some may have closed since; they leave at their due time). */
  get size(): number {
    return this.#queue.size;
  }

  /** Hold `socket` and call `answer` after the delay; false (nothing held) when the hold is full or closed. */
  hold(socket: HoldableSocket, answer: () => void): boolean {
    if (this.#closed || this.size >= this.maxHeld) return false;
    socket.pause();
    this.#queue.push({ socket, answer, due: this.#deps.now() + this.delayMs });
    if (this.#timer === undefined) this.#arm(this.delayMs);
    return true;
  }

  /** Answer everything held now (the listener is stopping) and hold nothing more. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.#deps.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#release(Infinity);
  }

  #arm(ms: number): void {
    const t = this.#deps.setTimer(() => this.#tick(), Math.max(0, ms));
    t.unref?.();
    this.#timer = t;
  }

  #tick(): void {
    this.#timer = undefined;
    this.#release(this.#deps.now());
    const next = this.#queue.peek();
    if (next !== undefined) this.#arm(next.due - this.#deps.now());
  }

  #release(until: number): void {
    for (let h = this.#queue.peek(); h !== undefined && h.due <= until; h = this.#queue.peek()) {
      this.#queue.shift();
      if (!h.socket.destroyed) h.answer();
    }
  }
}
