/**
 * The plugin's `onPresence(room, { joined, left }, ctx)` calls (issue 13): in the order the changes happened, one at
 * a time, to the version serving now, through the same gate as the connections' events (src/connection/dispatcher.ts).
 * A swap's suspension parks them like a connection's messages, and the new version gets them after its switch; a
 * handler in flight counts toward the swap's wait for idle. So a swap neither drops nor reorders presence events.
 *
 * Bounded: at most `maxQueued` events wait for their handler. Past it an event is dropped and counted: membership
 * itself (`ctx.members`) stays right, only that notification is lost. A version without `onPresence` gets nothing,
 * and nothing is queued for it.
 */
import { Fifo } from '../collections/fifo.js';
import { HotlineError } from '../errors.js';
import type { PresenceChange } from '../plugin/contract.js';
import type { RoomChange } from './presence-view.js';

/** What receives the events: an inline version (src/swap/version.ts), by the members it has. */
interface PresenceTarget {
  readonly retired?: boolean;
  readonly def: { onPresence?: (room: string, change: PresenceChange, ctx: unknown) => unknown };
  readonly ctx: unknown;
  handlerError(err: unknown): void;
}

/** The subset of the dispatch gate presence uses (a Dispatcher satisfies it). */
export interface PresenceGate {
  readonly target: unknown;
  readonly suspended: boolean;
  park(waiter: { pump(): void }): void;
  enter(): void;
  leave(): void;
  readonly limits: { hangTimeout?: number };
}

function targetOf(t: unknown): PresenceTarget | undefined {
  const v = t as Partial<PresenceTarget> | null;
  if (typeof v !== 'object' || v === null || v.retired === true) return undefined;
  if (typeof v.def?.onPresence !== 'function' || typeof v.handlerError !== 'function') return undefined;
  return v as PresenceTarget;
}

export class PresenceEvents {
  readonly #gate: PresenceGate;
  readonly #maxQueued: number;
  #queue = new Fifo<RoomChange>();
  #busy = false;
  #ticket = 0;
  #hangTimer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Events delivered to a handler, dropped at the bound, and handlers abandoned at hangTimeout, since start. */
  readonly counters = { delivered: 0, dropped: 0, abandoned: 0 };

  constructor(gate: PresenceGate, maxQueued: number) {
    this.#gate = gate;
    this.#maxQueued = maxQueued;
  }

  get pending(): number {
    return this.#queue.size;
  }

  push(changes: RoomChange[]): void {
    if (this.#closed) return;
    // Nobody listens: nothing to keep. During a suspension the next version may listen, so keep them then.
    if (!this.#gate.suspended && !targetOf(this.#gate.target)) return;
    for (const c of changes) {
      if (this.pending >= this.#maxQueued) {
        this.counters.dropped++;
        continue;
      }
      this.#queue.push(c);
    }
    this.pump();
  }

  /** @internal Dispatch what is queued (also called by the gate when a suspension ends). */
  pump(): void {
    const gate = this.#gate;
    while (!this.#busy && this.#queue.size > 0 && !this.#closed) {
      if (gate.suspended) {
        gate.park(this);
        return;
      }
      const change = this.#queue.shift()!;
      const target = targetOf(gate.target);
      if (!target) continue; // the serving version has no onPresence
      this.#run(target, change);
    }
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#hangTimer);
    this.#queue.clear();
  }

  #run(target: PresenceTarget, change: RoomChange): void {
    const gate = this.#gate;
    gate.enter();
    this.counters.delivered++;
    const ticket = ++this.#ticket;
    let result: unknown;
    try {
      result = target.def.onPresence!(change.room, { joined: change.joined, left: change.left }, target.ctx);
    } catch (err) {
      target.handlerError(err);
    }
    if (result === null || typeof result !== 'object' || typeof (result as Promise<void>).then !== 'function') {
      this.#settled();
      return;
    }
    this.#busy = true;
    const hangTimeout = gate.limits.hangTimeout;
    if (hangTimeout !== undefined && Number.isFinite(hangTimeout)) {
      this.#hangTimer = setTimeout(() => {
        if (ticket !== this.#ticket || !this.#busy) return;
        this.counters.abandoned++;
        target.handlerError(new HotlineError('HOTLINE_E_HANDLER_HUNG', `an onPresence handler (room "${change.room.slice(0, 64)}") did not settle within ${hangTimeout} ms; abandoned`));
        this.#settled();
        this.pump();
      }, hangTimeout);
      this.#hangTimer.unref();
    }
    (result as Promise<void>).then(
      () => this.#asyncSettled(ticket),
      (err: unknown) => {
        if (ticket === this.#ticket && this.#busy) target.handlerError(err);
        this.#asyncSettled(ticket);
      },
    );
  }

  #asyncSettled(ticket: number): void {
    if (ticket !== this.#ticket || !this.#busy) return;
    this.#settled();
    this.pump();
  }

  #settled(): void {
    clearTimeout(this.#hangTimer);
    this.#hangTimer = undefined;
    this.#busy = false;
    this.#ticket++;
    this.#gate.leave();
  }
}
