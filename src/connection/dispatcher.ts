/**
 * The dispatch gate shared by every connection: which version handles events now, whether dispatch is suspended
 * for a swap, and how many handlers are in flight. A swap suspends the gate, waits until it is idle, switches the
 * target with one assignment, and resumes: events that arrived meanwhile are queued per connection, in order.
 *
 * Suspension is counted, never one shared boolean: each suspend() returns its own hold, and dispatch resumes only
 * when the last hold is released. With a boolean, a swap that resumed its own suspension lifted an upgrade's too
 * (issue 10, fault 6). A hold is on every target, or (issue 12) on some targets only: a fold of a pinned version or a
 * canary stops the connections of the versions it moves, while the version they move into keeps serving its own.
 * The message path reads one count while nothing is suspended, as before; which targets are held is read only when
 * some hold exists.
 *
 * It also abandons async handlers that do not settle within `hangTimeout` (issue 11): one shared sweep every
 * hangTimeout / 4 (an interval that runs only while an async handler is in flight), not a timer per message. A
 * handler is stamped with the sweep count it started at (one field write: no map or set on the message path); the
 * sweep walks the connections and abandons a handler HANG_SWEEPS counts old, so after hangTimeout at the earliest and
 * 1.25 × hangTimeout at the latest. A walk of 10,000 connections every 500 ms is noise next to their traffic.
 */
import type { CloseInfo, MessageData } from '../plugin/contract.js';
import type { HotlineError } from '../errors.js';
import { RoomRegistry } from '../rooms/room-registry.js';
import type { Connection } from './connection.js';
import type { LatencySample } from './latency-sample.js';
import type { Link } from './link.js';

/** What handles connection events: one loaded plugin version. */
export interface DispatchTarget {
  /** Run the handler for one event; may return a promise. Must not be called after the target is retired. */
  open(conn: Connection): unknown;
  message(conn: Connection, data: MessageData): unknown;
  close(conn: Connection, info: CloseInfo): unknown;
  /**
   * A connection that arrives already opened (a session restored from the store: onOpen ran in another process)
   * becomes known to the target, with its state, without a handler. A worker-mode version mirrors it; inline has
   * nothing to do.
   */
  attach?(conn: Connection): void;
  /** A handler threw or rejected: count it against this target. */
  handlerError(err: unknown, conn: Connection): void;
  /**
   * True when the target detects its own hung handlers (a worker-mode version terminates and restores itself,
   * issue 11): the abandon sweep below leaves its handlers alone.
   */
  readonly watchesOwnHangs?: boolean;
  /** issue 12: where sampled handler latencies go (latency-sample.ts). */
  readonly latency?: LatencySample;
}

/**
 * Told how long each onMessage handler took (issue 14: the handler duration histogram). One call per message, only
 * when set: with none set the message path pays one field read.
 */
export interface HandlerObserver {
  /** `target`: the version that handled it; `ms`: from dispatch to settle (performance.now()). */
  handled(target: DispatchTarget, ms: number): void;
}

/** Limits the connection layer enforces. */
export interface ConnectionLimits {
  /** Bytes a connection may have queued for sending before it is closed as a slow consumer. */
  maxSendBuffer: number;
  /** Received messages waiting for their handler, per connection, before its socket stops being read. */
  maxQueuedMessages: number;
  /** Payload bytes waiting for their handler, per connection, before it is closed (HOTLINE_E_INBOUND_OVERFLOW). */
  maxQueuedBytes: number;
  /** An async handler not settled after this many ms is abandoned (HOTLINE_E_HANDLER_HUNG). Absent: never. */
  hangTimeout?: number;
}

/** Sweeps per hangTimeout; a handler is judged at the sweep HANG_SWEEPS + 1 after it started (see the file comment). */
const SWEEPS_PER_TIMEOUT = 4;
const HANG_SWEEPS = SWEEPS_PER_TIMEOUT + 1;

export interface DispatcherEvents {
  /** A connection broke a limit (slow consumer) and is being closed. */
  connectionError(conn: Connection, err: HotlineError): void;
  /** A connection finished: its close event was handled and it left the table. */
  connectionFinished(conn: Connection): void;
  /** issue 12: the last connection of a target that is not the default left it (a pinned version can retire). */
  targetEmptied?(target: DispatchTarget): void;
}

/** issue 12: picks the target of a new connection (a canary's share); absent, every new connection gets `target`. */
export type Router = (link: Link) => DispatchTarget;

/** One reason dispatch is suspended. `release()` is idempotent: a second call never lifts another holder's. */
export interface SuspendHold {
  readonly reason: string;
  release(): void;
}

/** A whenIdle() for some targets: resolved when `running` handlers on them have settled. */
interface TargetWaiter {
  targets: ReadonlySet<DispatchTarget>;
  running: number;
  done: () => void;
}

export class Dispatcher {
  /**
   * The default version: what a new connection gets (issue 12: each connection then keeps its own target,
   * `Connection.runtime`, which a migrating swap moves and a pinned one leaves alone).
   */
  target: DispatchTarget;
  /** issue 12: set while a canary takes a share of new connections. */
  router: Router | undefined;
  /** Connections per target, kept at open, move and finish (never per message). */
  #counts = new Map<DispatchTarget, number>();
  readonly limits: ConnectionLimits;
  readonly events: DispatcherEvents;
  /** Every connection that has not finished, by id. */
  readonly connections = new Map<string, Connection>();
  /** The rooms of those connections (src/rooms): host-owned, so a swap, which only changes `target`, keeps them. */
  readonly rooms = new RoomRegistry<Connection>();
  messagesIn = 0;
  messagesOut = 0;
  /** Messages dispatched, for latency sampling (one in SAMPLE_EVERY is timed). */
  dispatched = 0;
  /** Messages received but never handled: their connection closed, or overflowed, first. */
  messagesDropped = 0;
  /** Live suspensions; dispatch runs only when this is empty. */
  #holds = new Set<SuspendHold>();
  /** Holds on every target (the others name theirs in #targetHolds). */
  #globalHolds = 0;
  /** issue 12: holds per target, counted. */
  #targetHolds = new Map<DispatchTarget, number>();
  #inflight = 0;
  #idleWaiters: Array<() => void> = [];
  /** issue 12: whenIdle() for some targets: handlers still running on them. Undefined when nobody waits. */
  #targetWaiters: TargetWaiter[] | undefined;
  /** Connections that queued events while suspended; pumped on resume. */
  #parked = new Set<{ pump(): void }>();
  /** Sweeps so far: what an async handler is stamped with when it starts (Connection.asyncSince). */
  sweeps = 0;
  #sweepTimer: NodeJS.Timeout | undefined;
  /** Async handlers abandoned at hangTimeout, since start. */
  handlersAbandoned = 0;
  /** Handler timing for the metrics (src/ops), when they are on. */
  observer: HandlerObserver | undefined = undefined;

  constructor(target: DispatchTarget, limits: ConnectionLimits, events: DispatcherEvents) {
    this.target = target;
    this.limits = limits;
    this.events = events;
  }

  /** @internal The target of a new connection on `link`, counted. */
  route(link: Link): DispatchTarget {
    const t = this.router ? this.router(link) : this.target;
    this.#counts.set(t, (this.#counts.get(t) ?? 0) + 1);
    return t;
  }

  /** @internal `conn` moves to `to` (a migration); the caller has already settled its state. */
  move(conn: Connection, to: DispatchTarget): void {
    const from = conn.runtime;
    if (from === to) return;
    this.#counts.set(to, (this.#counts.get(to) ?? 0) + 1);
    conn.runtime = to;
    this.#uncount(from);
  }

  /** @internal `conn` left the table (finished or moved to another process). */
  forget(conn: Connection): void {
    this.#uncount(conn.runtime);
  }

  /** Connections on `target` now. */
  countOf(target: DispatchTarget): number {
    return this.#counts.get(target) ?? 0;
  }

  #uncount(t: DispatchTarget): void {
    const n = (this.#counts.get(t) ?? 0) - 1;
    if (n > 0) return void this.#counts.set(t, n);
    this.#counts.delete(t);
    if (t !== this.target) this.events.targetEmptied?.(t);
  }

  /** True while any hold exists (on every target or on some): the message path's one check. */
  get suspended(): boolean {
    return this.#holds.size > 0;
  }

  /** Is dispatch to `target` suspended now? Read only when `suspended` (a hold exists). */
  holds(target: DispatchTarget): boolean {
    return this.#globalHolds > 0 || this.#targetHolds.has(target);
  }

  /** Why dispatch is suspended now (one entry per hold), for status and tests. */
  get suspensions(): string[] {
    return [...this.#holds].map((h) => h.reason);
  }

  /** Handlers running now, across all connections. */
  get inflight(): number {
    return this.#inflight;
  }

  /**
   * Stop dispatching new events until the returned hold is released. Arrivals are queued per connection. Once the
   * last hold is released, dispatch resumes with what was queued, in arrival order per connection.
   */
  suspend(reason: string, targets?: Iterable<DispatchTarget>): SuspendHold {
    const only = targets === undefined ? undefined : [...new Set(targets)];
    const hold: SuspendHold = {
      reason,
      release: () => {
        if (!this.#holds.delete(hold)) return;
        if (only === undefined) this.#globalHolds--;
        else {
          for (const t of only) {
            const n = this.#targetHolds.get(t)! - 1;
            if (n > 0) this.#targetHolds.set(t, n);
            else this.#targetHolds.delete(t);
          }
        }
        // Parked connections re-check: one still held by another hold parks again.
        this.#resume();
      },
    };
    this.#holds.add(hold);
    if (only === undefined) this.#globalHolds++;
    else for (const t of only) this.#targetHolds.set(t, (this.#targetHolds.get(t) ?? 0) + 1);
    return hold;
  }

  #resume(): void {
    const parked = [...this.#parked];
    this.#parked.clear();
    for (const conn of parked) conn.pump();
  }

  /**
   * Resolve true once no handler is in flight, or false after `timeoutMs`. With `targets` (issue 12), only the
   * handlers running on those targets count; the caller holds them suspended, so no new one starts meanwhile.
   */
  whenIdle(timeoutMs: number, targets?: Iterable<DispatchTarget>): Promise<boolean> {
    if (targets !== undefined) return this.#whenTargetsIdle(timeoutMs, new Set(targets));
    if (this.#inflight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.#idleWaiters = this.#idleWaiters.filter((w) => w !== waiter);
        resolve(false);
      }, timeoutMs);
      this.#idleWaiters.push(waiter);
    });
  }

  #whenTargetsIdle(timeoutMs: number, targets: ReadonlySet<DispatchTarget>): Promise<boolean> {
    let running = 0;
    for (const conn of this.connections.values()) {
      const on = conn.runningOn;
      if (on !== undefined && targets.has(on)) running++;
    }
    if (running === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter: TargetWaiter = {
        targets,
        running,
        done: () => {
          clearTimeout(timer);
          this.#dropWaiter(waiter);
          resolve(true);
        },
      };
      const timer = setTimeout(() => {
        this.#dropWaiter(waiter);
        resolve(false);
      }, timeoutMs);
      (this.#targetWaiters ??= []).push(waiter);
    });
  }

  #dropWaiter(w: TargetWaiter): void {
    const list = this.#targetWaiters?.filter((x) => x !== w);
    this.#targetWaiters = list !== undefined && list.length > 0 ? list : undefined;
  }

  #targetSettled(target: DispatchTarget): void {
    for (const w of [...this.#targetWaiters!]) if (w.targets.has(target) && --w.running === 0) w.done();
  }

  /** @internal Called by a connection (or a link, issue 15) that queued an event while suspended. */
  park(conn: { pump(): void }): void {
    this.#parked.add(conn);
  }

  /** @internal A handler started. */
  enter(): void {
    this.#inflight++;
  }

  /** @internal An async handler started (stamped with `sweeps`): make sure the sweep runs. */
  watchHangs(): void {
    if (this.#sweepTimer !== undefined) return;
    const hangTimeout = this.limits.hangTimeout;
    if (hangTimeout === undefined || !Number.isFinite(hangTimeout)) return;
    this.#sweepTimer = setInterval(this.#sweep, Math.max(1, hangTimeout / SWEEPS_PER_TIMEOUT));
    this.#sweepTimer.unref();
  }

  /** Stop watching for hung handlers (the host is closing). */
  stopSweep(): void {
    clearInterval(this.#sweepTimer);
    this.#sweepTimer = undefined;
  }

  // A shared, bound function: one per dispatcher (STYLE.md 7).
  #sweep = (): void => {
    const now = ++this.sweeps;
    let watching = false;
    for (const conn of this.connections.values()) {
      const since = conn.asyncSince;
      if (since < 0) continue;
      watching = true;
      if (now - since < HANG_SWEEPS) continue;
      this.handlersAbandoned++;
      // Moves the queue on; a next async handler is stamped with `now`. Map iteration tolerates a delete meanwhile.
      conn.abandon(this.limits.hangTimeout!);
    }
    if (!watching) this.stopSweep();
  };

  /** @internal A handler settled; `target`: the one it ran on (a connection's; a link's is not waited for by target). */
  leave(target?: DispatchTarget): void {
    if (this.#targetWaiters !== undefined && target !== undefined) this.#targetSettled(target);
    if (--this.#inflight === 0 && this.#idleWaiters.length > 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}
