/**
 * One outbound long connection owned by the host (issue 15): a state machine that connects, reconnects with backoff
 * and jitter, queues sends while it is down (bounded), and dispatches what the upstream sends to the current
 * version, in order, one event at a time, through the same gate as the connections (src/connection/dispatcher.ts):
 * a swap's suspension parks a link's events like a connection's, and its in-flight handlers count toward the swap's
 * wait for idle. So a swap never drops, duplicates or reorders a link's messages, and never reconnects it.
 *
 *   connecting ─opened─► open ─ended─► backoff ─timer─► connecting ─…
 *        └────ended─────────────────────────┘
 *   any ─close()─► closed (for good: no reconnect, sends refused)
 */
import { backoffDelay } from '../client/backoff.js';
import { type ErrorCode, HotlineError } from '../errors.js';
import type { LinkCloseInfo, LinkPhase, LinkStatus, MessageData } from '../plugin/contract.js';
import { type LinkClaim, LinkHandle } from './link-handle.js';
import type { LinkSpec } from './link-options.js';
import type { LinkConnector, LinkSocket, LinkSocketEvents } from './link-socket.js';

/** What handles a link's events: a loaded version (src/swap/version.ts) that claimed it. */
export interface LinkTarget {
  linkEvent(event: LinkEvent, link: LinkHandle): unknown;
  /** A link handler threw or rejected: counted against the version (probation sees it). */
  handlerError(err: unknown): void;
}

export type LinkEvent =
  | { kind: 'open' }
  | { kind: 'reconnect' }
  | { kind: 'message'; data: MessageData }
  | { kind: 'close'; info: LinkCloseInfo };

/** The subset of the connections' dispatch gate a link uses (a Dispatcher satisfies it). */
export interface LinkGate {
  /** The version events go to now; a link dispatches to it only if it claimed the link. */
  readonly target: unknown;
  readonly suspended: boolean;
  park(waiter: { pump(): void }): void;
  enter(): void;
  leave(): void;
  readonly limits: { maxQueuedMessages: number; hangTimeout?: number };
}

/** Side effects of a link, injectable for tests. */
export interface LinkDeps {
  connect: LinkConnector;
  random: () => number;
  /** Reports what a link does that an operator should see (reconnects, refused frames). */
  log(level: 'info' | 'warn', msg: string, fields?: object): void;
}

/** @internal See the file comment. */
export class HostLink {
  readonly spec: LinkSpec;
  #phase: LinkPhase = 'connecting';
  #gate: LinkGate;
  #deps: LinkDeps;
  #socket: LinkSocket | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** Failed attempts since the last open: the backoff exponent. */
  #attempt = 0;
  #everOpened = false;
  /** Sends waiting for an open socket, with their byte sizes. */
  #sendQueue: Array<{ data: MessageData; bytes: number }> = [];
  #sendQueueBytes = 0;
  /** True from a connect until its open/reconnect hooks settled: what they send goes before the queued sends. */
  #hello = false;
  /** Events waiting for their handler, in arrival order; `#head` is the next. */
  #events: LinkEvent[] = [];
  #head = 0;
  #busy = false;
  #paused = false;
  /** Identifies the handler in flight, so a settle after a hang abandonment is ignored. */
  #ticket = 0;
  #hangTimer: NodeJS.Timeout | undefined;
  #claims = new Map<object, LinkClaim>();
  readonly counters = { reconnects: 0, bytesIn: 0, bytesOut: 0, messagesIn: 0, messagesOut: 0, framingErrors: 0, dropped: 0, handlersAbandoned: 0 };

  constructor(spec: LinkSpec, gate: LinkGate, deps: LinkDeps) {
    this.spec = spec;
    this.#gate = gate;
    this.#deps = deps;
    this.#connect();
  }

  get name(): string {
    return this.spec.name;
  }

  get phase(): LinkPhase {
    return this.#phase;
  }

  /** Messages waiting for their handler. */
  get pendingEvents(): number {
    return this.#events.length - this.#head;
  }

  status(): LinkStatus {
    const c = this.counters;
    return {
      name: this.spec.name,
      url: this.spec.url,
      phase: this.#phase,
      reconnects: c.reconnects,
      bytesIn: c.bytesIn,
      bytesOut: c.bytesOut,
      messagesIn: c.messagesIn,
      messagesOut: c.messagesOut,
      queued: this.#sendQueue.length,
      queuedBytes: this.#sendQueueBytes,
      framingErrors: c.framingErrors,
    };
  }

  // ── claims (src/links/link-table.ts decides who may claim) ──

  /** The claim of `owner`, if it has one. */
  claimOf(owner: object): LinkClaim | undefined {
    return this.#claims.get(owner);
  }

  /** Give `owner` a claim whose state starts as `state`. */
  addClaim(owner: object, state: unknown): LinkHandle {
    const claim: LinkClaim = { handle: undefined as unknown as LinkHandle, state };
    claim.handle = new LinkHandle(this, claim);
    this.#claims.set(owner, claim);
    return claim.handle;
  }

  /** Drop `owner`'s claim; true when no claim is left. */
  dropClaim(owner: object): boolean {
    this.#claims.delete(owner);
    return this.#claims.size === 0;
  }

  /** The claim of the current target, else the newest: whose state a newly claiming version migrates from. */
  currentClaim(): { owner: object; claim: LinkClaim } | undefined {
    const target = this.#gate.target as object;
    const own = this.#claims.get(target);
    if (own) return { owner: target, claim: own };
    let last: { owner: object; claim: LinkClaim } | undefined;
    for (const [owner, claim] of this.#claims) last = { owner, claim };
    return last;
  }

  // ── sending ──

  /** See Link.send in the contract. */
  send(data: MessageData): void {
    if (this.#phase === 'closed') throw new HotlineError('HOTLINE_E_LINK_CLOSED', `link "${this.name}" is closed`);
    if (typeof data !== 'string' && !(data instanceof Uint8Array)) {
      throw new HotlineError('HOTLINE_E_LINK_OPTIONS', `link "${this.name}": send() takes a string or a Uint8Array`);
    }
    const bytes = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
    const socket = this.#socket;
    if (this.#phase === 'open' && socket && (this.#hello || this.#sendQueue.length === 0)) {
      // The kernel buffer is bounded too: an upstream that stops reading must not grow the host's memory.
      if (socket.buffered + bytes > this.spec.maxQueuedBytes) this.#full('the upstream is not reading');
      this.#write(socket, data);
      return;
    }
    if (this.#sendQueue.length + 1 > this.spec.maxQueuedSends || this.#sendQueueBytes + bytes > this.spec.maxQueuedBytes) {
      this.#full(`${this.#sendQueue.length} sends (${this.#sendQueueBytes} bytes) wait for the link to open`);
    }
    this.#sendQueue.push({ data, bytes });
    this.#sendQueueBytes += bytes;
  }

  #full(why: string): never {
    throw new HotlineError(
      'HOTLINE_E_LINK_QUEUE_FULL',
      `link "${this.name}" (${this.#phase}): ${why}; bound ${this.spec.maxQueuedSends} sends / ${this.spec.maxQueuedBytes} bytes`,
    );
  }

  #write(socket: LinkSocket, data: MessageData): void {
    this.counters.bytesOut += socket.write(data);
    this.counters.messagesOut++;
  }

  #flush(): void {
    this.#hello = false;
    const socket = this.#socket;
    if (this.#phase !== 'open' || !socket) return;
    const queue = this.#sendQueue;
    this.#sendQueue = [];
    this.#sendQueueBytes = 0;
    for (const item of queue) this.#write(socket, item.data);
  }

  // ── the connection's life ──

  #connect(): void {
    this.#phase = 'connecting';
    const events: LinkSocketEvents = {
      opened: () => this.#opened(socket),
      message: (data, bytes) => this.#message(socket, data, bytes),
      ended: (reason, code) => this.#ended(socket, reason, code),
    };
    const socket = this.#deps.connect(this.spec, events);
    this.#socket = socket;
  }

  #opened(socket: LinkSocket): void {
    if (socket !== this.#socket || this.#phase !== 'connecting') return;
    this.#phase = 'open';
    this.#attempt = 0;
    this.#hello = true;
    if (this.#everOpened) {
      this.counters.reconnects++;
      this.#deps.log('info', `link "${this.name}" reconnected to ${this.spec.url}`, { reconnects: this.counters.reconnects });
      this.#enqueue({ kind: 'reconnect' });
    }
    this.#everOpened = true;
    this.#enqueue({ kind: 'open' });
  }

  #message(socket: LinkSocket, data: MessageData, bytes: number): void {
    if (socket !== this.#socket) return;
    this.counters.bytesIn += bytes;
    this.counters.messagesIn++;
    this.#enqueue({ kind: 'message', data });
  }

  #ended(socket: LinkSocket, reason: string, code: ErrorCode | undefined): void {
    if (socket !== this.#socket) return;
    this.#socket = undefined;
    const wasOpen = this.#phase === 'open';
    if (code === 'HOTLINE_E_LINK_FRAME') {
      this.counters.framingErrors++;
      this.#deps.log('warn', `link "${this.name}": ${reason}; reconnecting`, { code });
    }
    if (this.#phase === 'closed') {
      if (wasOpen) this.#enqueue({ kind: 'close', info: { reason, code, willReconnect: false } });
      return;
    }
    this.#phase = 'backoff';
    this.#hello = false;
    const delay = backoffDelay(++this.#attempt, { initialDelay: this.spec.initialDelay, maxDelay: this.spec.maxDelay, factor: 2 }, this.#deps.random);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#phase === 'backoff') this.#connect();
    }, delay);
    this.#timer.unref();
    if (wasOpen) this.#enqueue({ kind: 'close', info: { reason, ...(code && { code }), willReconnect: true } });
  }

  /** Close for good: no reconnect; queued sends are dropped; a last onLinkClose if it was open. Idempotent. */
  close(reason: string): void {
    if (this.#phase === 'closed') return;
    const wasOpen = this.#phase === 'open';
    this.#phase = 'closed';
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#sendQueue = [];
    this.#sendQueueBytes = 0;
    const socket = this.#socket;
    this.#socket = undefined;
    socket?.close();
    if (wasOpen) this.#enqueue({ kind: 'close', info: { reason, code: 'HOTLINE_E_LINK_CLOSED', willReconnect: false } });
  }

  // ── ordered dispatch ──

  #enqueue(event: LinkEvent): void {
    this.#events.push(event);
    // The inbound queue is bounded like a connection's: past the limit the socket stops being read.
    if (!this.#paused && this.pendingEvents >= this.#gate.limits.maxQueuedMessages) {
      this.#paused = true;
      this.#socket?.pause();
    }
    this.pump();
  }

  /** @internal Dispatch what is queued, one event at a time (also called by the gate when a suspension ends). */
  pump(): void {
    const gate = this.#gate;
    while (!this.#busy && this.#head < this.#events.length) {
      if (gate.suspended) {
        gate.park(this);
        return;
      }
      const event = this.#events[this.#head]!;
      this.#events[this.#head++] = undefined as unknown as LinkEvent;
      if (this.#head > 1024 && this.#head * 2 > this.#events.length) {
        this.#events = this.#events.slice(this.#head);
        this.#head = 0;
      }
      if (this.#paused && this.pendingEvents <= this.#gate.limits.maxQueuedMessages / 2) {
        this.#paused = false;
        this.#socket?.resume();
      }
      const target = gate.target as Partial<LinkTarget> & object;
      const claim = this.#claims.get(target);
      if (!claim || typeof target.linkEvent !== 'function') {
        // No version that claimed the link serves now (it is about to close, or the version is worker-mode).
        if (event.kind === 'message') this.counters.dropped++;
        if (event.kind === 'open' || event.kind === 'reconnect') this.#flush();
        continue;
      }
      this.#run(target as LinkTarget, claim, event);
    }
  }

  #run(target: LinkTarget, claim: LinkClaim, event: LinkEvent): void {
    const gate = this.#gate;
    gate.enter();
    const ticket = ++this.#ticket;
    let result: unknown;
    try {
      result = target.linkEvent(event, claim.handle);
    } catch (err) {
      target.handlerError(err);
    }
    if (result === null || typeof result !== 'object' || typeof (result as Promise<void>).then !== 'function') {
      this.#settled(ticket, event);
      return;
    }
    this.#busy = true;
    const hangTimeout = gate.limits.hangTimeout;
    if (hangTimeout !== undefined && Number.isFinite(hangTimeout)) {
      this.#hangTimer = setTimeout(() => {
        if (ticket !== this.#ticket || !this.#busy) return;
        this.counters.handlersAbandoned++;
        target.handlerError(new HotlineError('HOTLINE_E_HANDLER_HUNG', `a link "${this.name}" ${event.kind} handler did not settle within ${hangTimeout} ms; abandoned`));
        this.#settled(ticket, event);
        this.pump();
      }, hangTimeout);
      this.#hangTimer.unref();
    }
    (result as Promise<void>).then(
      () => this.#asyncSettled(ticket, event),
      (err: unknown) => {
        if (ticket === this.#ticket && this.#busy) target.handlerError(err);
        this.#asyncSettled(ticket, event);
      },
    );
  }

  #asyncSettled(ticket: number, event: LinkEvent): void {
    if (ticket !== this.#ticket || !this.#busy) return;
    this.#settled(ticket, event);
    this.pump();
  }

  #settled(ticket: number, event: LinkEvent): void {
    clearTimeout(this.#hangTimer);
    this.#hangTimer = undefined;
    this.#busy = false;
    this.#ticket = ticket + 1;
    this.#gate.leave();
    // The hello hooks have run: the sends queued while down go out now, after what the hooks sent.
    if (event.kind === 'open') this.#flush();
  }
}
