/**
 * The swap transaction (DESIGN.md §3): build → load → prepare → suspend → migrate → switch → dispose.
 *
 * One swap runs at a time. Requests that arrive meanwhile are queued; consecutive build requests (a file-watch burst,
 * a reload while one is queued) coalesce into one, since a queued build reads the disk only when it starts. Any
 * failure before the switch leaves the old version serving with its state untouched, and rejects with a coded error.
 */
import type { Logger } from 'pino';
import type { Bundle, Bundler } from '../build/bundler.js';
import type { Connection } from '../connection/connection.js';
import type { Dispatcher, SuspendHold } from '../connection/dispatcher.js';
import { type ErrorCode, HotlineError, isHotlineError, messageOf } from '../errors.js';
import type { OperationLock } from '../lock/operation-lock.js';
import { loadBundle } from '../load/loader.js';
import type { PreviousVersion } from '../plugin/contract.js';
import { defaultExportOf, validatePlugin } from '../plugin/validate.js';
import { type SwapPhase, type SwapRecord, type SwapTrigger, SwapHistory } from './history.js';
import { migrateState } from './migrate-state.js';
import { Probation, type ProbationOptions } from './probation.js';
import { runHook } from './run-hook.js';
import { Version, type VersionStats } from './version.js';

export interface SwapperOptions {
  /** How long in-flight handlers of the old version may take to settle at suspend. */
  settleTimeout: number;
  /** How long init, check, migrate and dispose may take. */
  hookTimeout: number;
  probation: ProbationOptions | false;
  /** Modules served to the plugin's `require` ahead of node_modules (`hotline` itself). */
  builtins: Record<string, unknown>;
  /**
   * The host's operation lock (lock/operation-lock.ts): a swap holds it from build to dispose. A request made while an
   * upgrade holds it is refused at once (HOTLINE_E_UPGRADE_IN_PROGRESS), never queued behind it.
   */
  lock: OperationLock;
  /**
   * Durable global state (issue 11): the first load (trigger `start`) migrates from this checkpoint, if it gives one,
   * instead of keeping init()'s state. `done(err)` hears how migrate took it; a refusal keeps init()'s state and the
   * start goes on: a bad checkpoint must never keep the host from coming back.
   */
  restore?: { take(plugin: string): PreviousVersion | undefined; done(err?: unknown): void };
}

/** Callbacks the host turns into its public events. */
export interface SwapperEvents {
  phase(phase: SwapPhase, trigger: SwapTrigger): void;
  swapped(record: SwapRecord, version: VersionStats): void;
  /** A reload with ifChanged found the running build: nothing was swapped. */
  unchanged(record: SwapRecord): void;
  swapFailed(record: SwapRecord, err: HotlineError): void;
  handlerError(version: VersionStats, err: HotlineError, conn?: Connection): void;
  probationFailed(version: VersionStats, err: HotlineError): void;
}

type JobKind = 'build' | 'rollback';

interface Job {
  kind: JobKind;
  trigger: SwapTrigger;
  /** Keep the running version when the build's hash is its own (a coalesced job: only if every request said so). */
  ifChanged: boolean;
  waiters: Array<{ resolve: (r: SwapRecord) => void; reject: (e: HotlineError) => void }>;
}

/** How many versions' counters status keeps. */
const VERSION_STATS_KEPT = 20;

export class Swapper {
  readonly history = new SwapHistory();
  /** Counters of recent versions, current last. Plain data: no reference to a version's module. */
  readonly versions: VersionStats[] = [];
  #current: Version | undefined;
  /** The bundle of the version the current one replaced: what rollback() loads. */
  #previous: Bundle | undefined;
  #phase: SwapPhase = 'idle';
  #queue: Job[] = [];
  /** The running queue loop, if any: close() waits for it. */
  #running: Promise<void> | undefined;
  #closed = false;
  #seq = 0;
  #swapIds = 0;
  #bundler: Bundler;
  #dispatcher: Dispatcher;
  #log: Logger;
  #options: SwapperOptions;
  #events: SwapperEvents;
  #probation: Probation | undefined;

  constructor(bundler: Bundler, dispatcher: Dispatcher, log: Logger, options: SwapperOptions, events: SwapperEvents) {
    this.#bundler = bundler;
    this.#dispatcher = dispatcher;
    this.#log = log;
    this.#options = options;
    this.#events = events;
    if (options.probation) this.#probation = new Probation(options.probation);
  }

  get phase(): SwapPhase {
    return this.#phase;
  }

  get current(): Version | undefined {
    return this.#current;
  }

  get canRollback(): boolean {
    return this.#previous !== undefined;
  }

  /**
   * Build from disk and swap. Resolves with the record of the swap that served this request. With `ifChanged`, a
   * build whose hash is the running version's swaps nothing: the record's outcome is `unchanged`.
   */
  reload(trigger: SwapTrigger, ifChanged = false): Promise<SwapRecord> {
    return this.#request('build', trigger, ifChanged);
  }

  /** Swap back to the previous build, migrating the state down. */
  rollback(trigger: SwapTrigger = 'rollback'): Promise<SwapRecord> {
    return this.#request('rollback', trigger);
  }

  /** Refuse new swaps, wait for the running one, and dispose the current version. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#probation?.stop();
    for (const job of this.#queue.splice(0)) {
      for (const w of job.waiters) w.reject(new HotlineError('HOTLINE_E_SWAP_CLOSED'));
    }
    await this.#running;
    const v = this.#current;
    if (v) await this.#dispose(v);
  }

  #request(kind: JobKind, trigger: SwapTrigger, ifChanged = false): Promise<SwapRecord> {
    if (this.#closed) return Promise.reject(new HotlineError('HOTLINE_E_SWAP_CLOSED'));
    try {
      this.#options.lock.check('swap');
    } catch (err) {
      return Promise.reject(err as HotlineError);
    }
    return new Promise((resolve, reject) => {
      const last = this.#queue.at(-1);
      if (kind === 'build' && last?.kind === 'build') {
        last.waiters.push({ resolve, reject });
        last.ifChanged &&= ifChanged;
      } else {
        this.#queue.push({ kind, trigger, ifChanged, waiters: [{ resolve, reject }] });
      }
      this.#running ??= this.#runQueue();
    });
  }

  async #runQueue(): Promise<void> {
    try {
      let job: Job | undefined;
      while ((job = this.#queue.shift())) {
        try {
          const record = await this.#perform(job);
          for (const w of job.waiters) w.resolve(record);
        } catch (err) {
          const coded = isHotlineError(err) ? err : new HotlineError('HOTLINE_E_BUILD', messageOf(err), { cause: err });
          for (const w of job.waiters) w.reject(coded);
        }
      }
    } finally {
      this.#running = undefined;
    }
  }

  async #perform(job: Job): Promise<SwapRecord> {
    const d = this.#dispatcher;
    const prev = this.#current;
    const t0 = performance.now();
    let mark = t0;
    const record: SwapRecord = {
      id: ++this.#swapIds,
      trigger: job.trigger,
      startedAt: new Date().toISOString(),
      from: prev?.label,
      outcome: 'aborted',
      phase: 'building',
      durations: {},
      totalMs: 0,
    };
    const enter = (phase: SwapPhase) => {
      const now = performance.now();
      if (this.#phase !== 'idle') record.durations[this.#phase as Exclude<SwapPhase, 'idle'>] = round(now - mark);
      mark = now;
      this.#phase = phase;
      record.phase = phase;
      if (phase !== 'idle') this.#events.phase(phase, job.trigger);
    };
    let next: Version | undefined;
    let suspension: SuspendHold | undefined;
    // A job queued before an upgrade took the lock is refused here, by the same rule as a new request. The wait
    // bound only matters for a swap meeting a swap, which the queue above already serialises.
    const hold = await this.#options.lock.acquire('swap', this.#options.settleTimeout);
    try {
      if (this.#closed) throw new HotlineError('HOTLINE_E_SWAP_CLOSED');
      enter('building');
      let bundle: Bundle;
      if (job.kind === 'rollback') {
        if (!this.#previous) throw new HotlineError('HOTLINE_E_NO_PREVIOUS');
        bundle = this.#previous;
      } else {
        bundle = await this.#bundler.build();
      }
      record.hash = bundle.hash;
      if (job.ifChanged && prev && bundle.hash === prev.bundle.hash) {
        record.outcome = 'unchanged';
        record.to = prev.label;
        this.#finishRecord(record, t0, mark);
        this.#events.unchanged(record);
        return record;
      }

      enter('loading');
      next = this.#load(bundle);
      record.to = next.label;

      enter('preparing');
      const def = next.def;
      if (def.init) {
        next.state = await this.#hook(next, () => def.init!(next!.ctx), 'HOTLINE_E_INIT', 'HOTLINE_E_INIT_TIMEOUT', 'init()');
      }
      if (def.check) await this.#hook(next, () => def.check!(next!.ctx), 'HOTLINE_E_CHECK', 'HOTLINE_E_CHECK', 'check()');

      enter('suspending');
      suspension = d.suspend('swap');
      if (!(await d.whenIdle(this.#options.settleTimeout))) {
        throw new HotlineError(
          'HOTLINE_E_SWAP_TIMEOUT',
          `${d.inflight} handler(s) of ${prev?.label} still running after settleTimeout (${this.#options.settleTimeout} ms)`,
        );
      }

      enter('migrating');
      let state = next.state;
      let connStates: Array<[Connection, unknown]> = [];
      if (prev) {
        const from: PreviousVersion = { version: prev.def.version, state: prev.state };
        ({ state, connStates } = await migrateState(next, from, d.connections.values(), this.#options.hookTimeout));
      } else if (job.trigger === 'start' && this.#options.restore) {
        ({ state, connStates } = await this.#restore(next, state));
      }

      // Nothing above touched the old version or any connection: everything below commits.
      enter('switching');
      next.state = state;
      for (const [conn, cs] of connStates) conn.state = cs;
      d.target = next;
      this.#current = next;
      if (prev) this.#previous = prev.bundle;
      this.#pushStats(next.stats);
      suspension.release();

      enter('disposing');
      if (prev) await this.#dispose(prev);
      record.outcome = 'switched';
      this.#startProbation(next, job.trigger, prev !== undefined);
      this.#finishRecord(record, t0, mark);
      this.#events.swapped(record, next.stats);
      return record;
    } catch (err) {
      suspension?.release();
      if (next && next !== this.#current) next.retire();
      const coded = isHotlineError(err) ? err : new HotlineError('HOTLINE_E_BUILD', messageOf(err), { cause: err });
      record.error = coded.toJSON();
      this.#finishRecord(record, t0, mark);
      this.#events.swapFailed(record, coded);
      throw coded;
    } finally {
      hold.release();
    }
  }

  /** The first load's state from the checkpoint, through migrate; init()'s state if there is none or migrate refuses it. */
  async #restore(next: Version, initState: unknown): Promise<{ state: unknown; connStates: Array<[Connection, unknown]> }> {
    const restore = this.#options.restore!;
    const from = restore.take(next.def.name);
    if (!from) return { state: initState, connStates: [] };
    try {
      const migrated = await migrateState(next, from, this.#dispatcher.connections.values(), this.#options.hookTimeout);
      restore.done();
      return migrated;
    } catch (err) {
      restore.done(err);
      return { state: initState, connStates: [] };
    }
  }

  #load(bundle: Bundle): Version {
    const seq = ++this.#seq;
    let version: Version | undefined;
    const module = loadBundle(bundle, {
      builtins: this.#options.builtins,
      label: `v${seq}`,
      onTimerError: (err) => version?.handlerError(err),
    });
    try {
      const def = validatePlugin(defaultExportOf(module.exports));
      version = new Version(seq, def, bundle, module, this.#dispatcher, this.#log, {
        onHandlerError: (v, err, conn) => this.#onHandlerError(v, err, conn),
      });
      return version;
    } catch (err) {
      // Nothing will own this module: close whatever its body opened and forget it in the live registry.
      module.release();
      throw err;
    }
  }

  /** Run a plugin hook with hookTimeout and turn its failure into `code` (run-hook.ts). */
  #hook<T>(v: Version, fn: () => T | Promise<T>, code: ErrorCode, timeoutCode: ErrorCode, name: string): Promise<T> {
    return runHook(v, fn, { name, code, timeoutCode, timeoutMs: this.#options.hookTimeout });
  }

  async #dispose(v: Version): Promise<void> {
    v.stopTimers();
    try {
      if (v.def.dispose) await this.#hook(v, () => v.def.dispose!(v.ctx), 'HOTLINE_E_HANDLER', 'HOTLINE_E_HANDLER', 'dispose()');
    } catch (err) {
      // The switch has happened: a failing dispose is the old version's problem, reported, never the new one's.
      this.#log.warn({ err, code: (err as HotlineError).code }, `${v.label}: dispose() failed`);
    } finally {
      v.retire();
    }
  }

  #onHandlerError(v: Version, err: HotlineError, conn?: Connection): void {
    this.#events.handlerError(v.stats, err, conn);
    this.#probation?.report(v.stats.seq, v.stats.errors, v.stats.messages);
  }

  #startProbation(v: Version, trigger: SwapTrigger, hadPrevious: boolean): void {
    // A first load has nothing to roll back to, and a rollback is not itself put on probation.
    if (!this.#probation || !hadPrevious || trigger === 'rollback' || trigger === 'probation') return;
    const stats = v.stats;
    this.#probation.start(stats.seq, () => {
      const err = new HotlineError(
        'HOTLINE_E_PROBATION',
        `${v.label} failed probation: ${stats.errors} errors in ${stats.messages} messages; rolling back`,
      );
      this.#events.probationFailed(stats, err);
      this.rollback('probation').catch((e: unknown) => this.#log.error({ err: e }, 'probation rollback failed'));
    });
  }

  #pushStats(stats: VersionStats): void {
    this.versions.push(stats);
    if (this.versions.length > VERSION_STATS_KEPT) this.versions.shift();
  }

  #finishRecord(record: SwapRecord, t0: number, mark: number): void {
    const now = performance.now();
    if (this.#phase !== 'idle') record.durations[this.#phase as Exclude<SwapPhase, 'idle'>] = round(now - mark);
    record.totalMs = round(now - t0);
    this.#phase = 'idle';
    this.history.add(record);
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
