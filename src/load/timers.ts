/**
 * Tracked timers. A plugin version's timer globals and `ctx.setTimeout`/`ctx.setInterval` go through one tracker, so
 * disposing the version clears every timer it left running, even ones the plugin forgot.
 */

/** The timer functions handed to plugin code in place of the globals. */
export interface TimerApi {
  setTimeout(fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]): NodeJS.Timeout;
  setInterval(fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]): NodeJS.Timeout;
  setImmediate(fn: (...args: unknown[]) => void, ...args: unknown[]): NodeJS.Immediate;
  clearTimeout(timer: NodeJS.Timeout | string | number | undefined): void;
  clearInterval(timer: NodeJS.Timeout | string | number | undefined): void;
  clearImmediate(timer: NodeJS.Immediate | undefined): void;
}

/** Owns every timer one version created. After `clearAll()` it refuses to create more. */
export class TimerTracker {
  #timeouts = new Set<NodeJS.Timeout>();
  #immediates = new Set<NodeJS.Immediate>();
  #cleared = false;
  /** Called when a timer callback throws, so the error is counted against the version instead of crashing. */
  #onError: (err: unknown) => void;
  /** Called after every `clearAll()`: the loader releases a module no version took (the swapper's failure path). */
  #onCleared: (() => void) | undefined;
  readonly api: TimerApi;

  constructor(onError: (err: unknown) => void, onCleared?: () => void) {
    this.#onError = onError;
    this.#onCleared = onCleared;
    this.api = {
      setTimeout: (fn, ms, ...args) => this.#timeout(fn, ms, args, false),
      setInterval: (fn, ms, ...args) => this.#timeout(fn, ms, args, true),
      setImmediate: (fn, ...args) => this.#immediate(fn, args),
      clearTimeout: (t) => this.#clear(t),
      clearInterval: (t) => this.#clear(t),
      clearImmediate: (t) => {
        if (t === undefined) return;
        this.#immediates.delete(t);
        clearImmediate(t);
      },
    };
  }

  /** How many timers are still scheduled. */
  get size(): number {
    return this.#timeouts.size + this.#immediates.size;
  }

  /** Clear every timer and refuse new ones: the version is being disposed. */
  clearAll(): void {
    this.#cleared = true;
    for (const t of this.#timeouts) clearTimeout(t);
    for (const t of this.#immediates) clearImmediate(t);
    this.#timeouts.clear();
    this.#immediates.clear();
    this.#onCleared?.();
  }

  #timeout(fn: (...args: unknown[]) => void, ms: number | undefined, args: unknown[], repeat: boolean): NodeJS.Timeout {
    const run = () => {
      if (!repeat) this.#timeouts.delete(timer);
      try {
        fn(...args);
      } catch (err) {
        this.#onError(err);
      }
    };
    const timer = repeat ? setInterval(run, ms) : setTimeout(run, ms);
    // A disposed version's code may still be unwinding (an old promise chain); its timers must never fire.
    if (this.#cleared) clearTimeout(timer);
    else this.#timeouts.add(timer);
    return timer;
  }

  #immediate(fn: (...args: unknown[]) => void, args: unknown[]): NodeJS.Immediate {
    const imm = setImmediate(() => {
      this.#immediates.delete(imm);
      try {
        fn(...args);
      } catch (err) {
        this.#onError(err);
      }
    });
    if (this.#cleared) clearImmediate(imm);
    else this.#immediates.add(imm);
    return imm;
  }

  #clear(t: NodeJS.Timeout | string | number | undefined): void {
    if (t === undefined || typeof t !== 'object') return;
    this.#timeouts.delete(t);
    clearTimeout(t);
  }
}
