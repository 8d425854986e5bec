/**
 * The dispatch gate shared by every connection: which version handles events now, whether dispatch is suspended
 * for a swap, and how many handlers are in flight. A swap suspends the gate, waits until it is idle, switches the
 * target with one assignment, and resumes: events that arrived meanwhile are queued per connection, in order.
 */
import type { CloseInfo, MessageData } from '../plugin/contract.js';
import type { HotlineError } from '../errors.js';
import type { Connection } from './connection.js';

/** What handles connection events: one loaded plugin version. */
export interface DispatchTarget {
  /** Run the handler for one event; may return a promise. Must not be called after the target is retired. */
  open(conn: Connection): unknown;
  message(conn: Connection, data: MessageData): unknown;
  close(conn: Connection, info: CloseInfo): unknown;
  /** A handler threw or rejected: count it against this target. */
  handlerError(err: unknown, conn: Connection): void;
}

/** Limits the connection layer enforces. */
export interface ConnectionLimits {
  /** Bytes a connection may have queued for sending before it is closed as a slow consumer. */
  maxSendBuffer: number;
  /** Received messages waiting for their handler, per connection, before its socket stops being read. */
  maxQueuedMessages: number;
  /** Payload bytes waiting for their handler, per connection, before it is closed (HOTLINE_E_INBOUND_OVERFLOW). */
  maxQueuedBytes: number;
}

export interface DispatcherEvents {
  /** A connection broke a limit (slow consumer) and is being closed. */
  connectionError(conn: Connection, err: HotlineError): void;
  /** A connection finished: its close event was handled and it left the table. */
  connectionFinished(conn: Connection): void;
}

export class Dispatcher {
  /** The version events go to. Replaced by one assignment at a swap's switch. */
  target: DispatchTarget;
  readonly limits: ConnectionLimits;
  readonly events: DispatcherEvents;
  /** Every connection that has not finished, by id. */
  readonly connections = new Map<string, Connection>();
  messagesIn = 0;
  messagesOut = 0;
  /** Messages received but never handled: their connection closed, or overflowed, first. */
  messagesDropped = 0;
  #suspended = false;
  #inflight = 0;
  #idleWaiters: Array<() => void> = [];
  /** Connections that queued events while suspended; pumped on resume. */
  #parked = new Set<Connection>();

  constructor(target: DispatchTarget, limits: ConnectionLimits, events: DispatcherEvents) {
    this.target = target;
    this.limits = limits;
    this.events = events;
  }

  get suspended(): boolean {
    return this.#suspended;
  }

  /** Handlers running now, across all connections. */
  get inflight(): number {
    return this.#inflight;
  }

  /** Stop dispatching new events. Arrivals are queued per connection. */
  suspend(): void {
    this.#suspended = true;
  }

  /** Dispatch again, starting with what was queued while suspended, in arrival order per connection. */
  resume(): void {
    this.#suspended = false;
    const parked = [...this.#parked];
    this.#parked.clear();
    for (const conn of parked) conn.pump();
  }

  /** Resolve true once no handler is in flight, or false after `timeoutMs`. */
  whenIdle(timeoutMs: number): Promise<boolean> {
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

  /** @internal Called by a connection that queued an event while suspended. */
  park(conn: Connection): void {
    this.#parked.add(conn);
  }

  /** @internal A handler started. */
  enter(): void {
    this.#inflight++;
  }

  /** @internal A handler settled. */
  leave(): void {
    if (--this.#inflight === 0 && this.#idleWaiters.length > 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}
