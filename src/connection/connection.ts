/**
 * A client connection owned by the host. Plugins never see it: they get its `handle` (src/plugin/conn-handle.ts),
 * which forwards the documented `Conn` members only; the socket lives behind `#link`, so no plugin version can keep it.
 *
 * Events (open, each message, close) are dispatched to the current version in order, one at a time: a handler's
 * promise settles before the next event of the same connection runs (DESIGN.md §2).
 */
import { Fifo } from '../collections/fifo.js';
import { HotlineError } from '../errors.js';
import { ConnHandle, type HandleTarget } from '../plugin/conn-handle.js';
import type { CloseInfo, MessageData, TransportKind } from '../plugin/contract.js';
import type { PreparedMessage } from '../rooms/prepared-message.js';
import type { RoomMember } from '../rooms/room-registry.js';
import { CLOSE_INTERNAL_ERROR, CLOSE_NORMAL, CLOSE_POLICY, closeFrameProblem, POLICY_CLOSE_GRACE_MS } from './close-codes.js';
import { newConnectionId } from './conn-id.js';
import type { DispatchTarget, Dispatcher } from './dispatcher.js';
import { SAMPLE_EVERY } from './latency-sample.js';
import type { Link } from './link.js';
import { isThenable } from './thenable.js';

const OPEN = Symbol('open');

class CloseEvent {
  constructor(readonly info: CloseInfo) {}
}

type Inbound = MessageData | typeof OPEN | CloseEvent;

const enum Phase {
  Open,
  Closing,
  Closed,
}

/** Options for a connection the session layer (src/session) creates. */
export interface ConnectionOptions {
  /** The id the connection already has: carried by a process upgrade or a session record (conn-id.ts). */
  id?: string;
  /**
   * A resumed session: restore this `conn.state` and these rooms (checked by whoever read them: room-name.ts'
   * roomListProblem), and skip onOpen, which already ran for this client.
   */
  resume?: { state: unknown; rooms?: readonly string[] };
  /** Called before each event's handler runs, so the session layer knows which message a send belongs to. */
  onEventStart?: (kind: 'open' | 'message' | 'close') => void;
  /** Called after each event's handler settled, so the session layer knows what the plugin has handled. */
  onEventDone?: (kind: 'open' | 'message' | 'close') => void;
  /**
   * The running message was dropped as poison (worker mode, issue 11): the session layer tells its client with a
   * `drop` frame, so the connection can stay open. Called before the event is settled (and so acked).
   */
  onPoison?: (err: HotlineError) => void;
  /**
   * The connection joined or left a room through `join`/`leave` (not the leaving of every room when it closes or
   * moves): the session layer stores its rooms, as it stores `conn.state`, so a restore can join them again.
   */
  onRoomsChanged?: () => void;
}

export class Connection implements HandleTarget, RoomMember {
  readonly id: string;
  /** What plugins get for this connection: made once, so every hook and `ctx.connections` see the same object. */
  readonly handle: ConnHandle;
  readonly transport: TransportKind;
  readonly remoteAddress: string;
  /** Per-connection plugin data, carried across swaps. */
  state: unknown = undefined;
  /** True once onOpen has been dispatched: only then does the connection have plugin state to migrate. */
  opened = false;
  /**
   * issue 12: the version this connection's events go to. Picked at accept (the dispatcher's default, or a canary's
   * share); moved only by `Dispatcher.move`, which a migration calls. Read once per event, like `target` was.
   */
  runtime: DispatchTarget;
  #link: Link;
  #d: Dispatcher;
  #phase = Phase.Open;
  /** Events received, not yet dispatched. A Fifo clears what it hands out: a queue that never empties keeps nothing. */
  #queue = new Fifo<Inbound>();
  /** Payload size of the messages in #queue: bytes of binary messages, UTF-16 code units of text ones. */
  #queuedBytes = 0;
  /** True while the link is told to stop reading because the queue reached maxQueuedMessages. */
  #readingPaused = false;
  /** Over maxQueuedBytes: closing, and everything it still sends is dropped. */
  #overflowed = false;
  #busy = false;
  /** The version running the current handler, so an async failure is counted against the right one. */
  #running: DispatchTarget | undefined;
  #slowTimer: NodeJS.Timeout | undefined;
  #onEventStart: ConnectionOptions['onEventStart'];
  #onEventDone: ConnectionOptions['onEventDone'];
  #onPoison: ConnectionOptions['onPoison'];
  #onRoomsChanged: ConnectionOptions['onRoomsChanged'];
  #runningKind: 'open' | 'message' | 'close' = 'open';
  /** When the running onMessage started, if the dispatcher has a HandlerObserver (metrics on). */
  #startedAt = 0;
  /** @internal The dispatcher's sweep count when the async handler in flight started; -1: none (dispatcher.ts). */
  asyncSince = -1;
  /** When the sampled handler in flight started (latency-sample.ts); -1: this one is not timed. */
  #sampledAt = -1;
  /** Bumped when a handler is abandoned: the settle callbacks it was given are stale from then on. */
  #generation = 0;
  // Bound once per connection (and again only after an abandoned handler), not once per message: the async settle
  // path is hot for async plugins.
  #settled!: () => void;
  #rejected!: (err: unknown) => void;

  constructor(link: Link, dispatcher: Dispatcher, options?: ConnectionOptions) {
    this.id = options?.id ?? newConnectionId();
    this.handle = new ConnHandle(this);
    this.#link = link;
    this.#d = dispatcher;
    this.transport = link.transport;
    this.remoteAddress = link.remoteAddress;
    this.#onEventStart = options?.onEventStart;
    this.#onEventDone = options?.onEventDone;
    this.#onPoison = options?.onPoison;
    this.#onRoomsChanged = options?.onRoomsChanged;
    this.#bindSettle();
    this.runtime = dispatcher.route(link);
    dispatcher.connections.set(this.id, this);
    if (options?.resume) {
      this.state = options.resume.state;
      // Before any event can be dispatched: the first message a restored session handles finds it in its rooms. The
      // registry directly, not join(): these rooms are the stored ones, nothing to tell the session layer.
      for (const room of options.resume.rooms ?? []) dispatcher.rooms.join(this, room);
      this.opened = true;
      this.runtime.attach?.(this);
    } else {
      this.#push(OPEN);
    }
  }

  /** @internal The version whose handler runs now for this connection; undefined when none runs (Dispatcher.whenIdle). */
  get runningOn(): DispatchTarget | undefined {
    return this.#busy ? this.#running : undefined;
  }

  /** True until the connection starts closing. */
  get isOpen(): boolean {
    return this.#phase === Phase.Open;
  }

  /** Events received but not yet dispatched. */
  get queued(): number {
    return this.#queue.size;
  }

  /** @internal The transport side, for a process upgrade (src/handoff) that moves the socket to a new worker. */
  get link(): Link {
    return this.#link;
  }

  /**
   * @internal For a process upgrade: the events received but not yet dispatched, so the new worker dispatches them
   * first. `undefined` when a close event is queued: a connection already gone cannot move.
   */
  pendingEvents(): { open: boolean; messages: MessageData[] } | undefined {
    let open = false;
    const messages: MessageData[] = [];
    for (const ev of this.#queue) {
      if (ev === OPEN) open = true;
      else if (ev instanceof CloseEvent) return undefined;
      else messages.push(ev);
    }
    return { open, messages };
  }

  /**
   * @internal The connection moved to another process: leave the table without a close event, and never dispatch
   * again. The socket is the caller's to release.
   */
  detach(): void {
    if (this.#phase === Phase.Closed) return;
    this.#phase = Phase.Closed;
    clearTimeout(this.#slowTimer);
    this.#queue.clear();
    this.#queuedBytes = 0;
    this.#link.forget?.();
    if (this.#d.connections.delete(this.id)) this.#d.forget(this);
    // Its rooms travelled with it (the transfer carries them): here it is in none.
    this.#d.rooms.leaveAll(this);
  }

  send(data: MessageData): boolean {
    if (this.#phase !== Phase.Open) return false;
    if (typeof data !== 'string' && !(data instanceof Uint8Array)) {
      throw new TypeError(`conn.send() takes a string or a Uint8Array, got ${typeof data}`);
    }
    this.#link.send(data);
    this.#d.messagesOut++;
    if (this.#link.bufferedAmount > this.#d.limits.maxSendBuffer) this.#slowConsumer();
    return true;
  }

  /**
   * @internal A room delivery (src/rooms/room-registry.ts): the message prepared once for every member. The same
   * rules as send(): nothing once closing, and the maxSendBuffer bound per member.
   */
  sendPrepared(msg: PreparedMessage): boolean {
    if (this.#phase !== Phase.Open) return false;
    const link = this.#link;
    if (link.sendPrepared) link.sendPrepared(msg);
    else link.send(msg.data);
    this.#d.messagesOut++;
    if (link.bufferedAmount > this.#d.limits.maxSendBuffer) this.#slowConsumer();
    return true;
  }

  /** Join a room (src/rooms). False when already in it, or when the connection is closing: it could not receive. */
  join(room: string): boolean {
    if (this.#phase !== Phase.Open) return false;
    if (!this.#d.rooms.join(this, room)) return false;
    this.#onRoomsChanged?.();
    return true;
  }

  /** @internal The rooms this connection is in, for an upgrade's transfer and `ctx.rooms`. */
  rooms(): string[] {
    return this.#d.rooms.roomsOf(this);
  }

  /** Leave a room. False when not in it. */
  leave(room: string): boolean {
    if (!this.#d.rooms.leave(this, room)) return false;
    this.#onRoomsChanged?.();
    return true;
  }

  /**
   * Close with a WebSocket close code and reason (TCP: informational, reported to onClose). An invalid code or
   * reason throws HOTLINE_E_CLOSE_CODE before anything changes: checked after the phase, ws would throw with the
   * connection already marked closing and its socket still open, and every later close() would do nothing.
   */
  close(code = CLOSE_NORMAL, reason = ''): void {
    const problem = closeFrameProblem(code, reason);
    if (problem) throw new HotlineError('HOTLINE_E_CLOSE_CODE', `connection ${this.id}: ${problem}`);
    if (this.#phase !== Phase.Open) return;
    this.#phase = Phase.Closing;
    this.#link.close(code, reason);
  }

  /**
   * The event running now was in flight at two failures of its version and is dropped, not handled again (worker
   * mode, issue 11). A session's message: its client gets a `drop` frame and the connection stays open, as the
   * session layer does for a replay after two worker deaths. Anything else (no session, an open or close event):
   * closed with 1011 and the code as reason, since there is no frame to tell the client which message was lost.
   */
  dropPoison(err: HotlineError): void {
    if (this.#onPoison !== undefined && this.#runningKind === 'message' && this.#busy) {
      this.#onPoison(err);
      return;
    }
    this.close(CLOSE_INTERNAL_ERROR, 'HOTLINE_E_POISON_MESSAGE');
  }

  /** Close without a handshake. */
  terminate(): void {
    if (this.#phase === Phase.Closed) return;
    this.#phase = Phase.Closing;
    this.#link.terminate();
  }

  /** @internal The transport delivers one decoded message. */
  receive(data: MessageData): void {
    if (this.#phase === Phase.Closed) return;
    const d = this.#d;
    if (this.#overflowed) {
      d.messagesDropped++;
      return;
    }
    d.messagesIn++;
    this.#queuedBytes += data.length;
    if (this.#queuedBytes > d.limits.maxQueuedBytes) return this.#overflow();
    this.#push(data);
    // Checked after the push: a handler that keeps up (the common case) has already taken it off the queue.
    if (!this.#readingPaused && this.#queue.size >= d.limits.maxQueuedMessages) {
      this.#readingPaused = true;
      this.#link.pauseReading();
    }
  }

  /** @internal The transport reports the connection gone. Called once. */
  closed(info: CloseInfo): void {
    if (this.#phase === Phase.Closed) return;
    this.#phase = Phase.Closed;
    clearTimeout(this.#slowTimer);
    // Nobody is left to answer: what the client sent and the plugin has not handled yet is dropped, not handled
    // (issue 9: a flooder that left kept the plugin busy with its backlog). The close event itself still runs.
    this.#dropQueued();
    this.#push(new CloseEvent(info));
  }

  /**
   * @internal The dispatcher's hang sweep: the async handler in flight did not settle within `hangTimeout` ms. It is
   * abandoned: counted against its version (HOTLINE_E_HANDLER_HUNG), the in-flight count a swap waits for is
   * released, and the queue goes on. If its promise settles later, that is ignored: the queue must not run twice.
   */
  abandon(hangTimeout: number): void {
    if (!this.#busy || this.asyncSince < 0) return;
    const target = this.#running!;
    const hook = { open: 'onOpen', message: 'onMessage', close: 'onClose' }[this.#runningKind];
    this.#bindSettle();
    target.handlerError(
      new HotlineError('HOTLINE_E_HANDLER_HUNG', `connection ${this.id}: ${hook} did not settle within hangTimeout (${hangTimeout} ms); abandoned, its queue goes on`),
      this,
    );
    this.#finish();
    this.pump();
  }

  /** Fresh settle callbacks; those handed out before are ignored from now on. */
  #bindSettle(): void {
    const generation = ++this.#generation;
    this.#settled = () => {
      if (generation !== this.#generation) return;
      this.#finish();
      this.pump();
    };
    this.#rejected = (err: unknown) => {
      if (generation !== this.#generation) return;
      this.#running?.handlerError(err, this);
      this.#finish();
      this.pump();
    };
  }

  /** @internal Dispatch queued events until one is in flight, the queue is empty, or dispatch is suspended. */
  pump(): void {
    const d = this.#d;
    while (!this.#busy && this.#queue.size > 0) {
      // One count read while nothing is suspended; which targets are held only when something is (issue 12).
      if (d.suspended && d.holds(this.runtime)) {
        d.park(this);
        return;
      }
      const ev = this.#queue.shift()!;
      if (this.#readingPaused && this.#queue.size <= d.limits.maxQueuedMessages >>> 1) {
        this.#readingPaused = false;
        this.#link.resumeReading();
      }
      this.#run(ev);
    }
  }

  #push(ev: Inbound): void {
    this.#queue.push(ev);
    if (!this.#busy) this.pump();
  }

  #run(ev: Inbound): void {
    const d = this.#d;
    const target = this.runtime;
    this.#busy = true;
    this.#running = target;
    this.#runningKind = ev === OPEN ? 'open' : ev instanceof CloseEvent ? 'close' : 'message';
    this.#onEventStart?.(this.#runningKind);
    d.enter();
    let result: unknown;
    try {
      if (ev === OPEN) {
        this.opened = true;
        result = target.open(this);
      } else if (ev instanceof CloseEvent) {
        result = this.opened ? target.close(this, ev.info) : undefined;
      } else {
        this.#queuedBytes -= ev.length;
        if (d.observer !== undefined) this.#startedAt = performance.now();
        if (++d.dispatched % SAMPLE_EVERY === 0 && target.latency) this.#sampledAt = performance.now();
        result = target.message(this, ev);
      }
    } catch (err) {
      target.handlerError(err, this);
      this.#finish();
      return;
    }
    if (isThenable(result)) {
      if (target.watchesOwnHangs !== true) {
        this.asyncSince = d.sweeps;
        d.watchHangs();
      }
      result.then(this.#settled, this.#rejected);
    } else this.#finish();
  }

  /** Bookkeeping after a handler; the caller continues the queue (the sync path is already inside pump()). */
  #finish(): void {
    const observer = this.#d.observer;
    if (observer !== undefined && this.#runningKind === 'message' && this.#running !== undefined) {
      observer.handled(this.#running, performance.now() - this.#startedAt);
    }
    if (this.#sampledAt >= 0) {
      this.#running?.latency?.record(performance.now() - this.#sampledAt);
      this.#sampledAt = -1;
    }
    this.asyncSince = -1;
    const ran = this.#running;
    this.#busy = false;
    this.#running = undefined;
    this.#d.leave(ran);
    this.#onEventDone?.(this.#runningKind);
    if (this.#phase === Phase.Closed && this.#queue.size === 0) {
      // The close event was the last one: the connection leaves the table, and its rooms. Only now, so that onClose
      // can still read ctx.rooms(conn) (to tell the others who left); a send to it meanwhile returns false.
      this.#d.rooms.leaveAll(this);
      if (this.#d.connections.delete(this.id)) {
        this.#d.forget(this);
        this.#d.events.connectionFinished(this);
      }
    }
  }

  /** Drop the messages not yet dispatched, counted; a queued open event stays (its close event pairs with it). */
  #dropQueued(): void {
    let open = false;
    let dropped = 0;
    for (const ev of this.#queue) {
      if (ev === OPEN) open = true;
      else dropped++;
    }
    this.#queue.clear();
    if (open) this.#queue.push(OPEN);
    this.#queuedBytes = 0;
    this.#d.messagesDropped += dropped;
  }

  /**
   * Over maxQueuedBytes. Pausing the socket (maxQueuedMessages) bounds what a fast sender queues in count; large
   * messages can still exceed the bytes bound first, and that is a hard stop: coded close, backlog dropped.
   */
  #overflow(): void {
    const max = this.#d.limits.maxQueuedBytes;
    this.#overflowed = true;
    this.#d.messagesDropped++;
    this.#dropQueued();
    this.#d.events.connectionError(
      this,
      new HotlineError('HOTLINE_E_INBOUND_OVERFLOW', `connection ${this.id} has more than maxQueuedBytes (${max}) of messages waiting for its handler; closing`),
    );
    // Read again (dropping) so the client's close frame can arrive; the grace timer bounds a client that never sends it.
    if (this.#readingPaused) {
      this.#readingPaused = false;
      this.#link.resumeReading();
    }
    this.#closeWithGrace('inbound queue overflow');
  }

  #slowConsumer(): void {
    const err = new HotlineError(
      'HOTLINE_E_SLOW_CONSUMER',
      `connection ${this.id} has ${this.#link.bufferedAmount} bytes queued, over maxSendBuffer (${this.#d.limits.maxSendBuffer})`,
    );
    this.#d.events.connectionError(this, err);
    this.#closeWithGrace('slow consumer');
  }

  /** Close with 1008 and cut the socket off if the close handshake has not finished within the grace. */
  #closeWithGrace(reason: string): void {
    this.close(CLOSE_POLICY, reason);
    if (this.#slowTimer !== undefined) return;
    // A consumer that does not read will not read the close frame either: bound the memory it holds.
    this.#slowTimer = setTimeout(() => this.#link.terminate(), POLICY_CLOSE_GRACE_MS);
    this.#slowTimer.unref();
  }
}
