/**
 * The supervisor's watchdog of one worker process (issue 11, inline mode). Inline plugin code runs on the worker's
 * main thread and nothing can preempt it (DESIGN.md §8: V8's TerminateExecution from another thread crashed Node 20),
 * so a `while (true) {}` in a handler would stop every connection for good. The worker's event loop sends a
 * heartbeat over IPC (worker.ts); this object times it, with the supervisor's clock, and calls `onHung` once when
 * the worker has been silent for `timeoutMs`. The supervisor then kills the worker and restarts it.
 *
 * Any message from the worker proves its loop runs, not only a heartbeat: during an export the IPC channel is busy
 * with connection handles, and a heartbeat queued behind them (Node writes one handle per ack) would arrive late.
 *
 * Armed at the first heartbeat, not at fork: before it the worker is still starting Node and hotline (seconds under
 * load), which the ready timeout bounds. A worker of an older build that never beats is never judged.
 */
import type { Clock } from './clock.js';

/** How often a worker beats for a given watchdog timeout: five beats per timeout, at least once a second. */
export function heartbeatInterval(watchdogTimeoutMs: number): number {
  return Math.max(1, Math.min(1_000, Math.floor(watchdogTimeoutMs / 5)));
}

export class Watchdog {
  #clock: Clock;
  #timeoutMs: number;
  #onHung: (silentMs: number) => void;
  #lastBeat = 0;
  #armed = false;
  #stopped = false;
  #timer: unknown;

  /** `timeoutMs`: 0 or Infinity turns the watchdog off. */
  constructor(clock: Clock, timeoutMs: number, onHung: (silentMs: number) => void) {
    this.#clock = clock;
    this.#timeoutMs = timeoutMs;
    this.#onHung = onHung;
  }

  /** True once the first heartbeat came and until the watchdog fired or stopped. */
  get armed(): boolean {
    return this.#armed && !this.#stopped;
  }

  /** How long since the last heartbeat (or any message); 0 while not armed (no heartbeat yet, or off). */
  get silentMs(): number {
    return this.armed ? this.#clock.now() - this.#lastBeat : 0;
  }

  /** A heartbeat: the first one arms the watchdog. */
  beat(): void {
    if (this.#stopped) return;
    this.#lastBeat = this.#clock.now();
    if (this.#armed || !(this.#timeoutMs > 0 && Number.isFinite(this.#timeoutMs))) return;
    this.#armed = true;
    this.#schedule(this.#timeoutMs);
  }

  /** Any other message from the worker: its loop runs. Does not arm. */
  alive(): void {
    if (this.#armed) this.#lastBeat = this.#clock.now();
  }

  /**
   * Judge silence by a shorter bound from now on (a stop: a hung worker must not hold it for the whole
   * watchdogTimeout). Never longer than the current one.
   */
  tighten(timeoutMs: number): void {
    if (!(timeoutMs < this.#timeoutMs)) return;
    this.#timeoutMs = timeoutMs;
    if (!this.armed) return;
    this.#clock.clearTimeout(this.#timer);
    this.#check();
  }

  /** The worker is gone or no longer watched. Idempotent. */
  stop(): void {
    this.#stopped = true;
    this.#clock.clearTimeout(this.#timer);
  }

  // One timer per worker, re-armed when it fires, not at every beat: a beat only records the time.
  #schedule(ms: number): void {
    this.#timer = this.#clock.setTimeout(() => this.#check(), ms);
  }

  #check(): void {
    if (this.#stopped) return;
    const silent = this.#clock.now() - this.#lastBeat;
    if (silent < this.#timeoutMs) return this.#schedule(this.#timeoutMs - silent);
    this.stop();
    this.#onHung(silent);
  }
}
