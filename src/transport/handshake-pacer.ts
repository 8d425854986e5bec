/**
 * Handshake pacing: at most `perTurn` handshake steps (a WebSocket upgrade completed, a session hello handled) run in
 * one turn of the event loop; the rest wait for the next turns, in order. A handshake costs the host about half a
 * millisecond (accept, the HTTP parse, ws' upgrade, the session's hello); twenty arriving together, as refused
 * clients retry in step or a botnet connects at once, ran back to back and stalled every other client's replies for
 * 10-40 ms (R2, measured with --cpu-prof). Paced, the loop reads the live connections between two handshake steps.
 *
 * A step waits in a bounded queue; past `maxQueued` steps, or `maxQueuedBytes` of what they hold (an upgrade holds
 * the bytes its client sent behind the request), it is refused at once (the caller answers 503), so a flood of
 * connects costs the host a queue slot each and never an unbounded backlog. Every queued step runs: a step checks
 * its own socket first, so one whose client gave up meanwhile costs a check (and settles its own counts).
 *
 * The turn is delimited with setImmediate, which runs after the poll phase: the sockets that became readable are
 * served between two batches. The scheduler is injected (`deps.defer`) so the logic is tested without a loop.
 */
import { Fifo } from '../collections/fifo.js';

export interface HandshakePacerDeps {
  /** Run `fn` in a later turn of the event loop, after I/O (setImmediate). */
  defer(fn: () => void): void;
}

/**
 * Handshake steps run in one turn at most, by default: a quarter of a millisecond or so of handshake work between two
 * reads of the loop. R2's hello-then-drop client, p99 of the normal replies over three runs each: unpaced 1.9-3.1 ms,
 * two a turn 1.7-2.5 ms, one a turn 1.6-2.2 ms (clean 0.4-1.0 ms). An idle host loses nothing: its turns are short.
 */
export const DEFAULT_PER_TURN = 1;
/**
 * Steps waiting at most, by default; the next is refused. A waiting upgrade holds its request (headers up to Node's
 * 16 KiB) and its socket: 1,024 of them is at most ~16 MiB of headers, and a storm of honest clients refused past it
 * comes back after `Retry-After`.
 */
export const DEFAULT_MAX_QUEUED = 1024;
/** Bytes the waiting steps may hold at most, by default (what clients sent before their upgrade was answered). */
export const DEFAULT_MAX_QUEUED_BYTES = 16 * 1024 * 1024;

/** The pacer's bounds; each defaults to the constant above. */
export interface PacerBounds {
  perTurn?: number;
  maxQueued?: number;
  maxQueuedBytes?: number;
}

const SET_IMMEDIATE: HandshakePacerDeps = { defer: (fn) => void setImmediate(fn) };

interface Step {
  run: () => void;
  bytes: number;
}

export class HandshakePacer {
  readonly perTurn: number;
  readonly maxQueued: number;
  readonly maxQueuedBytes: number;
  #deps: HandshakePacerDeps;
  #queue = new Fifo<Step>();
  #queuedBytes = 0;
  /** Steps run in the current turn. */
  #ran = 0;
  #scheduled = false;
  /** Steps refused because the queue was full (of steps or of bytes). */
  refused = 0;

  constructor(bounds: PacerBounds = {}, deps: HandshakePacerDeps = SET_IMMEDIATE) {
    this.perTurn = bounds.perTurn ?? DEFAULT_PER_TURN;
    this.maxQueued = bounds.maxQueued ?? DEFAULT_MAX_QUEUED;
    this.maxQueuedBytes = bounds.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
    this.#deps = deps;
  }

  /** Steps waiting now. */
  get queued(): number {
    return this.#queue.size;
  }

  /** Bytes the waiting steps hold now. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /**
   * Run `run` now if this turn has room and nothing waits before it, else queue it for a later turn. False when the
   * queue is full: nothing ran or will, and the caller refuses the handshake. `bytes`: what the step holds while it
   * waits (counted against maxQueuedBytes).
   */
  pace(run: () => void, bytes = 0): boolean {
    if (this.#queue.size === 0 && this.#ran < this.perTurn) {
      this.#ran++;
      this.#schedule();
      run();
      return true;
    }
    if (this.#queue.size >= this.maxQueued || this.#queuedBytes + bytes > this.maxQueuedBytes) {
      this.refused++;
      return false;
    }
    this.#queuedBytes += bytes;
    this.#queue.push({ run, bytes });
    this.#schedule();
    return true;
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    this.#deps.defer(this.#turn);
  }

  /** A new turn: run up to perTurn waiting steps, and come back while some still wait. */
  #turn = (): void => {
    this.#scheduled = false;
    this.#ran = 0;
    try {
      while (this.#ran < this.perTurn) {
        const step = this.#queue.shift();
        if (!step) break;
        this.#ran++;
        this.#queuedBytes -= step.bytes;
        step.run();
      }
    } finally {
      // Come back while steps wait (even after a step threw), and once more after a turn that ran some, to start the
      // next turn's count.
      if (this.#ran > 0 || this.#queue.size > 0) this.#schedule();
    }
  };
}
