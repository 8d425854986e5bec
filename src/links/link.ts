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
 *
 * A process upgrade (issue 15, src/handoff/link-export.ts and link-adopt.ts) moves a link between two HostLinks in
 * two processes. The old one is frozen (no reconnect timer, no connect attempt) while the move runs, then either lets
 * go of its socket (release) or carries on (abort: thaw). The new one is created deferred: it does not connect, and
 * what the plugin sends is only queued, until the upgrade commits (start). Before that it may adopt the old one's
 * socket, counters, queued sends and undispatched events: nothing is read from nor written to the socket before
 * the commit, so an abort leaves the old process with a link nobody else touched.
 */
import { backoffDelay } from '../client/backoff.js';
import { Fifo } from '../collections/fifo.js';
import { type ErrorCode, HotlineError } from '../errors.js';
import type { LinkCloseInfo, LinkPhase, LinkStatus, MessageData } from '../plugin/contract.js';
import { type LinkClaim, LinkHandle } from './link-handle.js';
import type { LinkSpec } from './link-options.js';
import type { LinkConnector, LinkSocket, LinkSocketEvents, LinkSocketSource } from './link-socket.js';

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

/** @internal What a process upgrade carries of a link besides its socket (see the file comment). */
export interface LinkSnapshot {
  /** link.state of the version serving it (the current target's claim, else the newest), and that version. */
  state: unknown;
  version: string;
  counters: LinkCounters;
  /** The backoff exponent (failed attempts since the last open). */
  attempt: number;
  everOpened: boolean;
  /** It was open in the old process (false: connecting or backing off). */
  open: boolean;
  /** Sends queued, not yet written, in order. */
  sends: MessageData[];
  /** Events not yet dispatched, in order. */
  events: LinkEvent[];
}

export interface LinkCounters {
  reconnects: number;
  bytesIn: number;
  bytesOut: number;
  messagesIn: number;
  messagesOut: number;
  framingErrors: number;
  dropped: number;
  handlersAbandoned: number;
  /** issue 15: process upgrades that carried this link with its socket (no reconnect). */
  upgradesMoved: number;
  /** issue 15: process upgrades that could not carry its socket (tls://, wss://, not quiescent): it reconnected. */
  upgradesReconnected: number;
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
  /** Events waiting for their handler, in arrival order. */
  #events = new Fifo<LinkEvent>();
  #busy = false;
  #paused = false;
  /** Identifies the handler in flight, so a settle after a hang abandonment is ignored. */
  #ticket = 0;
  #hangTimer: NodeJS.Timeout | undefined;
  #claims = new Map<object, LinkClaim>();
  readonly counters: LinkCounters = {
    reconnects: 0,
    bytesIn: 0,
    bytesOut: 0,
    messagesIn: 0,
    messagesOut: 0,
    framingErrors: 0,
    dropped: 0,
    handlersAbandoned: 0,
    upgradesMoved: 0,
    upgradesReconnected: 0,
  };
  /** New process of an upgrade, until the commit: no connect, no write (see the file comment). */
  #deferred: boolean;
  /** Old process of an upgrade, while the move runs: no reconnect timer, no connect attempt. */
  #frozen = false;
  /** What the old process carried, once adopted: the state a version claiming it starts from. */
  #carried: { state: unknown; version: string } | undefined;

  constructor(spec: LinkSpec, gate: LinkGate, deps: LinkDeps, deferred = false) {
    this.spec = spec;
    this.#gate = gate;
    this.#deps = deps;
    this.#deferred = deferred;
    if (!deferred) this.#connect();
  }

  get name(): string {
    return this.spec.name;
  }

  get phase(): LinkPhase {
    return this.#phase;
  }

  /** Waiting for an upgrade's commit (see the file comment). */
  get deferred(): boolean {
    return this.#deferred;
  }

  /** Adopted from the old process of an upgrade: what it carried (the state a claim starts from). */
  get carried(): { state: unknown; version: string } | undefined {
    return this.#carried;
  }

  /** Messages waiting for their handler. */
  get pendingEvents(): number {
    return this.#events.size;
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
      upgradesMoved: c.upgradesMoved,
      upgradesReconnected: c.upgradesReconnected,
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
    if (this.#phase === 'open' && socket && !this.#deferred && (this.#hello || this.#sendQueue.length === 0)) {
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
    if (this.#phase !== 'open' || !socket || this.#deferred) return;
    const queue = this.#sendQueue;
    this.#sendQueue = [];
    this.#sendQueueBytes = 0;
    for (const item of queue) this.#write(socket, item.data);
  }

  // ── the connection's life ──

  #connect(): void {
    this.#phase = 'connecting';
    this.#attach((events) => this.#deps.connect(this.spec, events));
  }

  /** Make a socket whose events reach this link while it is the link's socket, and make it the link's socket. */
  #attach(make: (events: LinkSocketEvents) => LinkSocket): LinkSocket {
    const events: LinkSocketEvents = {
      opened: () => this.#opened(socket),
      message: (data, bytes) => this.#message(socket, data, bytes),
      ended: (reason, code) => this.#ended(socket, reason, code),
    };
    const socket = make(events);
    this.#socket = socket;
    return socket;
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
    ++this.#attempt;
    // Frozen for an upgrade's move: the timer waits for thaw() (an abort); at release the link is let go.
    if (!this.#frozen) this.#backoff();
    if (wasOpen) this.#enqueue({ kind: 'close', info: { reason, ...(code && { code }), willReconnect: true } });
  }

  #backoff(): void {
    const delay = backoffDelay(this.#attempt, { initialDelay: this.spec.initialDelay, maxDelay: this.spec.maxDelay, factor: 2 }, this.#deps.random);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#phase === 'backoff') this.#connect();
    }, delay);
    this.#timer.unref();
  }

  // ── a process upgrade (see the file comment) ──

  /** Old process: the open socket's movable part (plain TCP under tcp:// or ws://), undefined when there is none. */
  handoffSource(): LinkSocketSource | undefined {
    return this.#phase === 'open' ? this.#socket?.handoff() : undefined;
  }

  /**
   * Old process, dispatch suspended and idle: stop reconnecting (a connect attempt under way is abandoned, and made
   * again at thaw) and return what the new process needs. The socket, if open, is the caller's to pause.
   */
  freeze(): LinkSnapshot {
    this.#frozen = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    // Nothing more is read here: what arrives after this snapshot must reach the new process instead.
    if (this.#phase === 'open') this.#socket?.pause();
    if (this.#phase === 'connecting' && this.#socket) {
      const attempt = this.#socket;
      // Its ended() is ignored: it is no longer the link's socket.
      this.#socket = undefined;
      attempt.close();
    }
    const from = this.currentClaim();
    return {
      state: from?.claim.state,
      version: String((from?.owner as { version?: unknown } | undefined)?.version ?? ''),
      counters: { ...this.counters },
      attempt: this.#attempt,
      everOpened: this.#everOpened,
      open: this.#phase === 'open',
      sends: this.#sendQueue.map((s) => s.data),
      events: this.#events.toArray(),
    };
  }

  /** Old process, the upgrade aborted: carry on where freeze() stopped. The socket's reading is the caller's. */
  thaw(): void {
    if (!this.#frozen) return;
    this.#frozen = false;
    if (this.#phase === 'open' && !this.#paused) this.#socket?.resume();
    if (this.#phase === 'backoff' && this.#timer === undefined) this.#backoff();
    else if (this.#phase === 'connecting' && !this.#socket) this.#connect();
    this.pump();
  }

  /**
   * Old process, the upgrade committed: the link lives on in the new process. A socket that moved is let go of (no
   * FIN: the new process holds it); one that could not move (TLS) is closed, the new process reconnects. No event.
   */
  letGo(socketMoved: boolean): void {
    const socket = this.#socket;
    this.#socket = undefined;
    this.#phase = 'closed';
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#sendQueue = [];
    this.#sendQueueBytes = 0;
    this.#events.clear();
    this.#claims.clear();
    if (socketMoved) socket?.detach();
    else socket?.close();
  }

  /**
   * New process, before the commit: take what the old process carried, with its socket when it moved (`make` builds
   * the LinkSocket on it; `head` is what the old process had read of a frame). Without one (`reason` says why), the
   * link connects at the commit, and if it was open its plugin hears a close first, as after any lost connection.
   */
  adopt(snap: LinkSnapshot, wire: { make: (events: LinkSocketEvents) => LinkSocket; head: Buffer } | { reason: string }): void {
    Object.assign(this.counters, snap.counters);
    this.#attempt = snap.attempt;
    this.#everOpened = snap.everOpened;
    this.#carried = { state: snap.state, version: snap.version };
    // A version of this process that claimed it already (in init) starts from the carried state too.
    for (const claim of this.#claims.values()) claim.state = snap.state;
    const queued = this.#sendQueue;
    this.#sendQueue = [];
    this.#sendQueueBytes = 0;
    // The old process's sends were made first.
    for (const data of snap.sends) this.#queueSend(data);
    for (const item of queued) this.#queueSend(item.data);
    for (const event of snap.events) this.#events.push(event);
    if ('make' in wire) {
      this.counters.upgradesMoved++;
      const socket = this.#attach(wire.make);
      this.#phase = 'open';
      // An open or reconnect event still to run: its hooks' sends go first, then the queue (as after a connect).
      this.#hello = snap.events.some((e) => e.kind === 'open' || e.kind === 'reconnect');
      if (wire.head.length > 0) socket.consume(wire.head);
    } else if (snap.open) {
      this.counters.upgradesReconnected++;
      const reason = `a process upgrade could not move this connection (${wire.reason}); reconnecting`;
      this.#events.push({ kind: 'close', info: { reason, code: 'HOTLINE_E_LINK_NOT_MOVED', willReconnect: true } });
    }
    if (this.pendingEvents >= this.#gate.limits.maxQueuedMessages) this.#paused = true;
    this.pump();
  }

  #queueSend(data: MessageData): void {
    const bytes = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
    this.#sendQueue.push({ data, bytes });
    this.#sendQueueBytes += bytes;
  }

  /** New process, the upgrade committed: read from the adopted socket, or connect. Idempotent. */
  start(): void {
    if (!this.#deferred) return;
    this.#deferred = false;
    if (this.#phase === 'closed') return;
    const socket = this.#socket;
    if (!socket) return this.#connect();
    if (!this.#paused) socket.resume();
    if (!this.#hello) this.#flush();
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
    while (!this.#busy && this.#events.size > 0) {
      if (gate.suspended) {
        gate.park(this);
        return;
      }
      const event = this.#events.shift()!;
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
