/**
 * The swap history: one record per attempt, bounded, newest last. Queryable through `host.status()`, the admin
 * socket and `hotline status`.
 */

/** The phases of the swap transaction, in order (DESIGN.md §3). */
export type SwapPhase =
  | 'idle'
  | 'building'
  | 'loading'
  | 'preparing'
  | 'suspending'
  | 'migrating'
  | 'switching'
  | 'disposing';

/** What started a swap. */
export type SwapTrigger = 'start' | 'watch' | 'reload' | 'signal' | 'admin' | 'rollback' | 'probation'
  /** issue 11: a worker-mode version hung, crashed or ran out of memory and was replaced by the last known good. */
  | 'restore'
  /** issue 12: a canary's verdict (promoted after its window, or rolled back over its error budget). */
  | 'canary'
  /** issue 12: a pinned version reached its max age; its remaining connections migrated. */
  | 'max-age'
  | 'promote';

/**
 * `unchanged`: a reload asked to skip an identical build found the same bundle hash; the running version stays.
 * `restored` (issue 11): a failed worker-mode version was replaced; `error` is its failure.
 */
export type SwapOutcome = 'switched' | 'aborted' | 'unchanged' | 'restored'
  /**
   * issue 12: `pinned`: the new version is the default, the old one kept for its connections; `canary`: the new
   * version takes a share of new connections; `promoted` / `rolled-back`: connections of other live versions moved
   * into `to` and those retired; `retired`: a pinned version's remaining connections moved at its max age.
   */
  | 'pinned' | 'canary' | 'promoted' | 'rolled-back' | 'retired';

/** One swap attempt. Durations are milliseconds per phase that ran. */
export interface SwapRecord {
  id: number;
  trigger: SwapTrigger;
  startedAt: string;
  from?: string;
  to?: string;
  hash?: string;
  outcome: SwapOutcome;
  /** The phase the swap was in when it ended; `disposing` for a switched swap. */
  phase: SwapPhase;
  durations: Partial<Record<Exclude<SwapPhase, 'idle'>, number>>;
  totalMs: number;
  error?: { code: string; message: string };
}

export class SwapHistory {
  #records: SwapRecord[] = [];
  #limit: number;

  constructor(limit = 100) {
    this.#limit = limit;
  }

  add(record: SwapRecord): void {
    this.#records.push(record);
    if (this.#records.length > this.#limit) this.#records.shift();
  }

  list(): SwapRecord[] {
    return [...this.#records];
  }

  get last(): SwapRecord | undefined {
    return this.#records.at(-1);
  }
}
