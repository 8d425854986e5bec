/**
 * Everything one plugin version opened through hotline's tracked APIs, so nothing of it outlives the version:
 * timers, `process` listeners, microtasks and ticks (stopped at the switch), child processes, servers, sockets and
 * worker threads (closed at retire, after the plugin's own `dispose()` had its chance). The rule is documented in
 * docs/guide.md, "What a version leaves behind".
 *
 * Measured before this existed (issue 11): intervals of `require('timers')` kept an old version sending (31 messages
 * after a swap), and a `process.on` listener added per version leaked 335 MB over 200 swaps.
 */
import type { EventEmitter } from 'node:events';
import { HotlineError } from '../errors.js';
import { TimerTracker } from './timers.js';

/** An object the version opened and the host closes at retire. */
interface Tracked {
  kind: ResourceKind;
  close: () => void;
}

export type ResourceKind = 'child' | 'server' | 'socket' | 'worker';

/** Counts of what a version still holds, for logs and tests. */
export interface ResourceCounts {
  timers: number;
  processListeners: number;
  child: number;
  server: number;
  socket: number;
  worker: number;
}

/** A listener on the real `process`, and the wrapper that runs it guarded. */
interface ProcessListener {
  event: string | symbol;
  listener: (...args: unknown[]) => unknown;
  wrapped: (...args: unknown[]) => void;
}

/** Something with `once(event, fn)`: every tracked resource is an EventEmitter. */
interface Emitter {
  once(event: string, fn: () => void): unknown;
}

/** The real process, typed as the EventEmitter it is (its typings only accept known event names). */
const hostProcess = process as unknown as EventEmitter;

/** How long a child process has after SIGTERM at retire before it gets SIGKILL. */
export const CHILD_KILL_GRACE_MS = 2000;

export class VersionResources {
  readonly timers: TimerTracker;
  #onError: (err: unknown) => void;
  #running = true;
  #released = false;
  #listeners: ProcessListener[] = [];
  #tracked = new Map<object, Tracked>();

  /**
   * `onError`: counts an error of plugin code against the version (a callback threw, a forbidden call).
   * `onTimersCleared`: see TimerTracker.
   */
  constructor(onError: (err: unknown) => void, onTimersCleared?: () => void) {
    this.#onError = onError;
    this.timers = new TimerTracker(onError, onTimersCleared);
  }

  /** False once the version was stopped at the switch: its timers and process listeners are gone. */
  get running(): boolean {
    return this.#running;
  }

  get released(): boolean {
    return this.#released;
  }

  counts(): ResourceCounts {
    const c: ResourceCounts = { timers: this.timers.size, processListeners: this.#listeners.length, child: 0, server: 0, socket: 0, worker: 0 };
    for (const t of this.#tracked.values()) c[t.kind]++;
    return c;
  }

  /**
   * Run a plugin callback the host scheduled for it (a microtask, a tick, a process listener). Never throws. Dropped
   * once the version is released; until then it runs, so an async `dispose()` that queues a tick still finishes.
   */
  call(fn: (...args: unknown[]) => unknown, args: unknown[], self?: unknown): void {
    if (this.#released) return;
    try {
      Reflect.apply(fn, self, args);
    } catch (err) {
      this.#onError(err);
    }
  }

  /** Refuse a call that would end or damage the host: counted against the version, then thrown at the caller. */
  forbidden(what: string): never {
    const err = new HotlineError('HOTLINE_E_PLUGIN_FORBIDDEN', `${what} is not allowed in plugin code: the host process belongs to hotline`);
    this.#onError(err);
    throw err;
  }

  /** A retired version's leftover code may not open new resources. */
  assertOpen(what: string): void {
    if (this.#released) this.forbidden(`${what} after the version was retired`);
  }

  addProcessListener(method: 'on' | 'once' | 'prependListener' | 'prependOnceListener', event: string | symbol, listener: (...args: unknown[]) => unknown): void {
    if (typeof listener !== 'function') {
      // Let the real process produce its own TypeError.
      hostProcess[method](event, listener);
      return;
    }
    this.assertOpen(`process.${method}()`);
    const once = method === 'once' || method === 'prependOnceListener';
    const entry: ProcessListener = {
      event,
      listener,
      wrapped: (...args: unknown[]) => {
        if (once) this.#dropListener(entry);
        this.call(listener, args, process);
      },
    };
    this.#listeners.push(entry);
    if (method === 'prependListener' || method === 'prependOnceListener') hostProcess.prependListener(event, entry.wrapped);
    else hostProcess.on(event, entry.wrapped);
  }

  removeProcessListener(event: string | symbol, listener: unknown): void {
    // The last one added first, as EventEmitter does.
    for (let i = this.#listeners.length - 1; i >= 0; i--) {
      const e = this.#listeners[i]!;
      if (e.event === event && e.listener === listener) {
        this.#dropListener(e);
        return;
      }
    }
  }

  /** Remove the version's own listeners (all of them, or those of `event`); the host's stay. */
  removeProcessListeners(event?: string | symbol): void {
    for (const e of [...this.#listeners]) if (event === undefined || e.event === event) this.#dropListener(e);
  }

  /** Version listeners of `event`, as the plugin added them (for `process.listeners()` through the view). */
  processListeners(event: string | symbol): Array<(...args: unknown[]) => unknown> {
    return this.#listeners.filter((e) => e.event === event).map((e) => e.listener);
  }

  /** Track `obj` until it emits `doneEvent`; `close` runs at retire if it has not by then. */
  track<T extends Emitter>(kind: ResourceKind, obj: T, doneEvent: string, close: (obj: T) => void): T {
    if (this.#released) {
      // Opened by leftover code after retire: close it at once, so the refusal cannot be caught and ignored.
      safely(() => close(obj));
      this.forbidden(`opening a ${kind} after the version was retired`);
    }
    this.#tracked.set(obj, { kind, close: () => close(obj) });
    obj.once(doneEvent, () => this.#tracked.delete(obj));
    return obj;
  }

  /**
   * Stop everything that runs the version's code by itself: timers, process listeners, queued microtasks and ticks.
   * Called at the switch, before the plugin's `dispose()`. Idempotent.
   */
  stop(): void {
    this.#running = false;
    this.timers.clearAll();
    this.removeProcessListeners();
  }

  /** Stop, then close every child process, server, socket and worker the version left open. Idempotent. */
  release(): ResourceCounts {
    const left = this.counts();
    if (this.#released) return left;
    this.#released = true;
    this.stop();
    for (const t of this.#tracked.values()) safely(t.close);
    this.#tracked.clear();
    return left;
  }

  #dropListener(e: ProcessListener): void {
    const i = this.#listeners.indexOf(e);
    if (i >= 0) this.#listeners.splice(i, 1);
    hostProcess.removeListener(e.event, e.wrapped);
  }
}

function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    // Closing what a retired version left is best effort: already closed, or closed by the plugin meanwhile.
  }
}
