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
import { defaultExportOf, validatePlugin } from '../plugin/validate.js';
import type { PreviousVersion } from '../plugin/contract.js';
import type { ExportedState, Isolation, RuntimeHooks, VersionRuntime, VersionStats } from '../runtime/version-runtime.js';
import { WorkerVersion, type WorkerRuntimeOptions } from '../runtime/worker-version.js';
import { Canary } from './canary.js';
import { type SwapOutcome, type SwapPhase, type SwapRecord, type SwapTrigger, SwapHistory } from './history.js';
import { Probation, type ProbationOptions } from './probation.js';
import type { Policy } from './reload-policy.js';
import { runHook } from './run-hook.js';
import { Version } from './version.js';

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
  /** issue 11: inline (`vm` in this thread, the default) or a worker thread per version. */
  isolation: Isolation;
  /** Worker mode: hangTimeout and the worker's resourceLimits. */
  worker: Pick<WorkerRuntimeOptions, 'hangTimeout' | 'resourceLimits'>;
  /** issue 12: which new connections are a canary's share (Math.random unless a test scripts it). */
  random?: () => number;
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
  /** issue 11, worker mode: a version hung, crashed or ran out of memory and was terminated; a restore follows. */
  versionFailed(version: VersionStats, err: HotlineError): void;
}

type JobKind = 'build' | 'rollback' | 'restore' | 'promote' | 'max-age';

/** issue 12: connections of `from` move into `into` (which serves already), then `from` retire. */
interface FoldPlan {
  into: VersionRuntime;
  from: VersionRuntime[];
  outcome: SwapOutcome;
  /** Recorded in the history (HOTLINE_E_CANARY). */
  error?: HotlineError;
  /** The build a later plain rollback goes back to. */
  previous?: Bundle;
}

const MIGRATE: Policy = { kind: 'migrate' };

interface Job {
  kind: JobKind;
  trigger: SwapTrigger;
  /** Keep the running version when the build's hash is its own (a coalesced job: only if every request said so). */
  ifChanged: boolean;
  waiters: Array<{ resolve: (r: SwapRecord) => void; reject: (e: HotlineError) => void }>;
  /** restore: the failed version and why it failed. */
  failed?: VersionRuntime;
  failure?: HotlineError;
  /** restore: attempts so far (a restore that could not take the lock is retried). */
  attempt?: number;
  /** build (issue 12): how the new version takes traffic. */
  policy?: Policy;
  /** max-age: the pinned version; promote/rollback by a canary verdict: the canary judged. */
  version?: VersionRuntime;
}

/** A restore that failed (no lock, both builds refused) is tried again after this, up to RESTORE_ATTEMPTS times. */
const RESTORE_RETRY_MS = 1_000;
/** A failure this soon after a restore continues a streak; past RESTORE_LOOP_STREAK the previous build is preferred. */
const RESTORE_QUIET_MS = 10_000;
const RESTORE_LOOP_STREAK = 3;
/** Delay before the second restore of a streak, doubling up to the max. */
const RESTORE_BACKOFF_MS = 100;
const RESTORE_BACKOFF_MAX_MS = 5_000;
/** Worker mode: the least time a version's worker has to start and evaluate its bundle (hookTimeout if longer). */
const WORKER_LOAD_TIMEOUT_MS = 10_000;
const RESTORE_ATTEMPTS = 5;

/** How many versions' counters status keeps. */
const VERSION_STATS_KEPT = 20;

export class Swapper {
  readonly history = new SwapHistory();
  /** Counters of recent versions, current last. Plain data: no reference to a version's module. */
  readonly versions: VersionStats[] = [];
  #current: VersionRuntime | undefined;
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
  /**
   * issue 12: older versions kept for the connections they had at a pinned swap; retired after their last one, or
   * at their max age (timer). Never the default for new connections.
   */
  #pinned = new Map<VersionRuntime, { since: number; maxAge: number | undefined; timer: NodeJS.Timeout | undefined }>();
  /** issue 12: the canary in progress; `#current` is then the stable version. */
  #canary: Canary | undefined;
  /** Versions whose dispose has started: a fold and a last-connection retire may race for one. */
  #disposing = new WeakSet<VersionRuntime>();
  /** issue 11: restores in a row, each within RESTORE_QUIET_MS of the one before (a crash loop). */
  #restoreStreak = 0;
  #lastRestoreAt = -Infinity;

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

  get current(): VersionRuntime | undefined {
    return this.#current;
  }

  get canRollback(): boolean {
    return this.#previous !== undefined || this.#canary !== undefined || this.#pinned.size > 0;
  }

  /** issue 12: the canary in progress, if any. */
  get canary(): Canary | undefined {
    return this.#canary;
  }

  /** issue 12: every live version: the default, the canary, the pinned ones (oldest first). */
  live(): Array<{ version: VersionRuntime; role: 'default' | 'canary' | 'pinned'; since?: number; maxAge?: number }> {
    const out: Array<{ version: VersionRuntime; role: 'default' | 'canary' | 'pinned'; since?: number; maxAge?: number }> = [];
    for (const [version, p] of this.#pinned) out.push({ version, role: 'pinned', since: p.since, ...(p.maxAge !== undefined && { maxAge: p.maxAge }) });
    if (this.#current) out.push({ version: this.#current, role: 'default' });
    if (this.#canary) out.push({ version: this.#canary.version, role: 'canary', since: this.#canary.startedAt });
    return out;
  }

  /**
   * issue 12: fold the other live versions into one: the canary (promoted) if one runs, else the current version
   * (pinned connections migrate now). HOTLINE_E_NOTHING_TO_PROMOTE when only one version lives.
   */
  promote(trigger: SwapTrigger = 'promote'): Promise<SwapRecord> {
    return this.#request('promote', trigger, false, undefined, trigger === 'canary' ? this.#canary?.version : undefined);
  }

  /** @internal The dispatcher's `targetEmptied`: a pinned version's last connection is gone, it retires. */
  targetEmptied(t: unknown): void {
    const v = t as VersionRuntime;
    if (!this.#pinned.has(v)) return;
    this.#unpin(v);
    this.#log.info(`${v.label}: its last pinned connection closed; retiring it`);
    void this.#dispose(v);
  }

  /**
   * Build from disk and swap. Resolves with the record of the swap that served this request. With `ifChanged`, a
   * build whose hash is the running version's swaps nothing: the record's outcome is `unchanged`.
   */
  reload(trigger: SwapTrigger, ifChanged = false, policy: Policy = MIGRATE): Promise<SwapRecord> {
    if (this.#canary) return Promise.reject(new HotlineError('HOTLINE_E_CANARY_ACTIVE', `a canary (${this.#canary.version.label}) is running: promote or roll it back first`));
    return this.#request('build', trigger, ifChanged, policy);
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
    const canary = this.#canary;
    this.#canary = undefined;
    canary?.stop();
    const others = [...this.#pinned.keys(), ...(canary ? [canary.version] : [])];
    for (const v of others) this.#unpin(v);
    for (const v of others) await this.#dispose(v);
    const v = this.#current;
    if (v) await this.#dispose(v);
  }

  #request(kind: JobKind, trigger: SwapTrigger, ifChanged = false, policy?: Policy, version?: VersionRuntime): Promise<SwapRecord> {
    if (policy?.kind === 'migrate') policy = undefined;
    if (this.#closed) return Promise.reject(new HotlineError('HOTLINE_E_SWAP_CLOSED'));
    try {
      this.#options.lock.check('swap');
    } catch (err) {
      return Promise.reject(err as HotlineError);
    }
    return new Promise((resolve, reject) => {
      const last = this.#queue.at(-1);
      // Only plain reloads coalesce: a pin or a canary is a decision of its own.
      if (kind === 'build' && last?.kind === 'build' && policy === undefined && last.policy === undefined) {
        last.waiters.push({ resolve, reject });
        last.ifChanged &&= ifChanged;
      } else {
        this.#queue.push({ kind, trigger, ifChanged, waiters: [{ resolve, reject }], ...(policy && { policy }), ...(version && { version }) });
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
    if (job.kind === 'restore') return this.#restore(job);
    if (job.kind !== 'build') {
      const plan = this.#foldPlan(job);
      if (plan) return this.#fold(job, plan);
    }
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
    let next: VersionRuntime | undefined;
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
      next = await this.#load(bundle);
      record.to = next.label;

      enter('preparing');
      await this.#prepare(next);

      const policy = job.policy ?? MIGRATE;
      if (this.#canary) throw new HotlineError('HOTLINE_E_CANARY_ACTIVE', `a canary (${this.#canary.version.label}) is running: promote or roll it back first`);
      if (policy.kind === 'canary' && !prev) throw new HotlineError('HOTLINE_E_POLICY', 'a canary needs a running version to compare with');
      if (prev && policy.kind !== 'migrate') {
        // issue 12: nothing migrates. The new version starts from its own init() state; the old one keeps serving the
        // connections it has, with its state, its timers and its module, until it retires.
        enter('switching');
        next.serving();
        this.#pushStats(next.stats);
        if (policy.kind === 'pin') {
          d.target = next;
          this.#current = next;
          this.#previous = prev.bundle;
          record.outcome = 'pinned';
          if (d.countOf(prev) > 0) {
            this.#pin(prev, policy.maxAge);
          } else {
            enter('disposing');
            await this.#dispose(prev);
          }
          this.#startProbation(next, job.trigger, true);
        } else {
          this.#startCanary(next, prev, policy);
          record.outcome = 'canary';
        }
        this.#finishRecord(record, t0, mark);
        this.#events.swapped(record, next.stats);
        return record;
      }

      enter('suspending');
      suspension = d.suspend('swap');
      if (!(await d.whenIdle(this.#options.settleTimeout))) {
        throw new HotlineError(
          'HOTLINE_E_SWAP_TIMEOUT',
          `${d.inflight} handler(s) of ${prev?.label} still running after settleTimeout (${this.#options.settleTimeout} ms)`,
        );
      }

      enter('migrating');
      let connStates: Array<[Connection, unknown]> = [];
      const pinned = [...this.#pinned.keys()];
      if (prev) {
        const from = await this.#hook(prev, () => prev.exportState(), 'HOTLINE_E_MIGRATE', 'HOTLINE_E_MIGRATE', 'the export of its state');
        ({ connStates } = await this.#migrate(next, from, pinned.length === 0 ? d.connections.values() : this.#connectionsOf(prev)));
        // issue 12: a plain reload with pinned versions alive moves their connections too, each from its own version.
        for (const l of pinned) connStates.push(...(await this.#adoptInto(next, l)));
      } else if (job.trigger === 'start' && this.#options.restore) {
        ({ connStates } = await this.#restoreCheckpoint(next));
      }

      // Nothing above touched the old version or any connection: everything below commits.
      enter('switching');
      for (const [conn, cs] of connStates) conn.state = cs;
      d.target = next;
      this.#moveAll(next, connStates);
      this.#current = next;
      for (const l of pinned) this.#unpin(l);
      next.serving();
      // A worker-mode version that failed while this swap ran hands what it holds to the new one.
      if (prev instanceof WorkerVersion && prev.failure) prev.handOver(next);
      if (prev) this.#previous = prev.bundle;
      this.#pushStats(next.stats);
      suspension.release();

      enter('disposing');
      if (prev) await this.#dispose(prev);
      for (const l of pinned) await this.#dispose(l);
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
  async #restoreCheckpoint(next: VersionRuntime): Promise<{ connStates: Array<[Connection, unknown]> }> {
    const restore = this.#options.restore!;
    const from = restore.take(next.name);
    if (!from) return { connStates: [] };
    try {
      const migrated = await this.#migrate(next, from);
      restore.done();
      return migrated;
    } catch (err) {
      restore.done(err);
      return { connStates: [] };
    }
  }

  /** init, then check, each bounded by hookTimeout. */
  async #prepare(next: VersionRuntime): Promise<void> {
    await this.#hook(next, () => next.init(), 'HOTLINE_E_INIT', 'HOTLINE_E_INIT_TIMEOUT', 'init()');
    await this.#hook(next, () => next.check(), 'HOTLINE_E_CHECK', 'HOTLINE_E_CHECK', 'check()');
  }

  async #migrate(next: VersionRuntime, from: ExportedState, connections: Iterable<Connection> = this.#dispatcher.connections.values()): Promise<{ connStates: Array<[Connection, unknown]> }> {
    const prev: PreviousVersion = { version: from.version, state: from.state, ...(from.restoredAt !== undefined && { restoredAt: from.restoredAt }) };
    const out = await next.migrate(prev, connections, this.#options.hookTimeout);
    if (next instanceof WorkerVersion) next.seedCheckpoint(from);
    return out;
  }

  #runtimeHooks(): RuntimeHooks {
    return {
      onHandlerError: (v, err, conn) => this.#onHandlerError(v, err, conn),
      onFailure: (v, err) => this.#onFailure(v, err),
    };
  }

  async #load(bundle: Bundle): Promise<VersionRuntime> {
    const seq = ++this.#seq;
    if (this.#options.isolation === 'worker') {
      return WorkerVersion.load(seq, bundle, this.#dispatcher, this.#runtimeHooks(), {
        ...this.#options.worker,
        // A worker's start is Node's, not the plugin's: on a loaded machine it alone took over a second (H1).
        loadTimeout: Math.max(this.#options.hookTimeout, WORKER_LOAD_TIMEOUT_MS),
        log: this.#log,
      });
    }
    let version: Version | undefined;
    const module = loadBundle(bundle, {
      builtins: this.#options.builtins,
      label: `v${seq}`,
      onTimerError: (err) => version?.handlerError(err),
    });
    try {
      const def = validatePlugin(defaultExportOf(module.exports));
      version = new Version(seq, def, bundle, module, this.#dispatcher, this.#log, this.#runtimeHooks());
      return version;
    } catch (err) {
      // Nothing will own this module: close whatever its body opened and forget it in the live registry.
      module.release();
      throw err;
    }
  }

  /** Run a plugin hook with hookTimeout and turn its failure into `code` (run-hook.ts). */
  #hook<T>(v: VersionRuntime, fn: () => T | Promise<T>, code: ErrorCode, timeoutCode: ErrorCode, name: string): Promise<T> {
    return runHook(v, fn, { name, code, timeoutCode, timeoutMs: this.#options.hookTimeout });
  }

  async #dispose(v: VersionRuntime): Promise<void> {
    if (this.#disposing.has(v)) return;
    this.#disposing.add(v);
    if (v.failure !== undefined) {
      // A failed worker version's thread is gone already: there is no dispose to run, only the retire.
      v.retire();
      return;
    }
    v.stopTimers();
    try {
      await this.#hook(v, () => v.dispose(), 'HOTLINE_E_HANDLER', 'HOTLINE_E_HANDLER', 'dispose()');
    } catch (err) {
      // The switch has happened: a failing dispose is the old version's problem, reported, never the new one's.
      this.#log.warn({ err, code: (err as HotlineError).code }, `${v.label}: dispose() failed`);
    } finally {
      v.retire();
    }
  }

  #onHandlerError(v: VersionRuntime, err: HotlineError, conn?: Connection): void {
    this.#events.handlerError(v.stats, err, conn);
    this.#probation?.report(v.stats.seq, v.stats.errors, v.stats.messages);
    if (this.#canary?.version === v) this.#canary.report();
  }

  /**
   * issue 11, worker mode: the version was terminated. A restore jumps the queue: every connection's next event waits
   * in the failed version until it runs. It does not bypass the lock: a running swap finishes (or times out) first.
   */
  #onFailure(v: VersionRuntime, err: HotlineError): void {
    this.#events.versionFailed(v.stats, err);
    if (this.#closed) return;
    if (this.#canary?.version === v) {
      // issue 12: a canary that hangs, crashes or runs out of memory has failed its trial: rolled back at once (ahead
      // of the queue, as a restore), its connections down to stable with its last checkpoint and its held events.
      const job: Job = { kind: 'rollback', trigger: 'canary', ifChanged: false, waiters: [], version: v, failure: err };
      job.waiters.push({ resolve: () => undefined, reject: (e) => this.#log.error({ err: e }, `canary ${v.label}: rollback after its failure failed`) });
      this.#queue.unshift(job);
      this.#running ??= this.#runQueue();
      return;
    }
    if (this.#roleOf(v) === undefined) return;
    // A restored version that fails again soon is a crash loop: back off (as the supervisor does), and from the third
    // failure in a row prefer the previous build (see #restore).
    const now = performance.now();
    this.#restoreStreak = now - this.#lastRestoreAt < RESTORE_QUIET_MS ? this.#restoreStreak + 1 : 1;
    const delay = this.#restoreStreak >= 2 ? Math.min(RESTORE_BACKOFF_MS * 2 ** (this.#restoreStreak - 2), RESTORE_BACKOFF_MAX_MS) : 0;
    const job: Job = { kind: 'restore', trigger: 'restore', ifChanged: false, waiters: [], failed: v, failure: err, attempt: 1 };
    const enqueue = () => {
      if (this.#closed || this.#roleOf(v) === undefined) return;
      this.#queue.unshift(job);
      this.#running ??= this.#runQueue();
    };
    if (delay === 0) return enqueue();
    setTimeout(enqueue, delay).unref();
  }

  /**
   * Replace a failed worker-mode version by the last known good one, started from its bundle, with the last
   * checkpoint of its state (through `migrate`), then hand it the events the failed one holds, in order. Last known
   * good: the previous build when the failed version is on probation (a new build that fails at once is not
   * restarted into a crash loop), otherwise the failed version's own build; the other one if the first is refused.
   */
  async #restore(job: Job): Promise<SwapRecord> {
    const failed = job.failed!;
    const d = this.#dispatcher;
    const t0 = performance.now();
    let mark = t0;
    const record: SwapRecord = {
      id: ++this.#swapIds,
      trigger: 'restore',
      startedAt: new Date().toISOString(),
      from: failed.label,
      outcome: 'aborted',
      phase: 'loading',
      durations: {},
      totalMs: 0,
      error: job.failure!.toJSON(),
    };
    const enter = (phase: SwapPhase) => {
      const now = performance.now();
      if (this.#phase !== 'idle') record.durations[this.#phase as Exclude<SwapPhase, 'idle'>] = round(now - mark);
      mark = now;
      this.#phase = phase;
      record.phase = phase;
      this.#events.phase(phase, 'restore');
    };
    let hold;
    try {
      hold = await this.#options.lock.acquire('swap', this.#options.settleTimeout);
    } catch (err) {
      this.#retryRestore(job, err);
      throw err;
    }
    try {
      if (this.#closed) throw new HotlineError('HOTLINE_E_SWAP_CLOSED');
      const role = this.#roleOf(failed);
      if (role === undefined) {
        // A swap that ran meanwhile replaced it (and took over its events).
        record.outcome = 'unchanged';
        record.to = this.#current?.label;
        this.#finishRecord(record, t0, mark);
        return record;
      }
      const onProbation = this.#previous !== undefined && this.#probation?.watching(failed.stats.seq) === true;
      const looping = this.#previous !== undefined && this.#restoreStreak >= RESTORE_LOOP_STREAK;
      // issue 12: a pinned version is restored from its own build only (its clients speak its protocol); the previous
      // build is the default version's fallback.
      const candidates =
        role === 'pinned' ? [failed.bundle] : onProbation || looping ? [this.#previous!, failed.bundle] : [failed.bundle, ...(this.#previous ? [this.#previous] : [])];
      const checkpoint = await failed.exportState().catch(() => undefined);
      let lastErr: unknown;
      for (const bundle of candidates) {
        let next: VersionRuntime | undefined;
        try {
          enter('loading');
          next = await this.#load(bundle);
          record.to = next.label;
          record.hash = bundle.hash;
          enter('preparing');
          await this.#prepare(next);
          enter('migrating');
          // Only the failed version's connections: the other live versions' stay where they are (issue 12).
          const connStates = checkpoint ? (await this.#migrate(next, checkpoint, this.#connectionsOf(failed))).connStates : [];
          enter('switching');
          for (const [conn, cs] of connStates) conn.state = cs;
          if (role === 'pinned') {
            this.#repin(failed, next);
          } else {
            d.target = next;
            this.#current = next;
            if (this.#canary?.stable === failed) this.#canary.replaceStable(next);
          }
          const known = new Set(connStates.map(([conn]) => conn));
          for (const conn of this.#connectionsOf(failed)) this.#move(conn, next, known);
          next.serving();
          failed.handOver?.(next);
          failed.retire();
          if (role === 'default') {
            if (bundle !== failed.bundle) this.#previous = failed.bundle;
            this.#probation?.stop();
          }
          this.#pushStats(next.stats);
          record.outcome = 'restored';
          this.#lastRestoreAt = performance.now();
          this.#finishRecord(record, t0, mark);
          this.#log.warn({ swap: record }, `${failed.label} failed (${job.failure!.code}); restored ${next.label}${checkpoint ? ` from its checkpoint of ${checkpoint.version}` : ' with a fresh init()'} in ${record.totalMs} ms`);
          this.#events.swapped(record, next.stats);
          return record;
        } catch (err) {
          lastErr = err;
          next?.retire();
          this.#log.error({ err, code: (err as HotlineError).code }, `restore of ${failed.label} from build ${bundle.hash} failed`);
        }
      }
      throw lastErr;
    } catch (err) {
      const coded = isHotlineError(err) ? err : new HotlineError('HOTLINE_E_BUILD', messageOf(err), { cause: err });
      this.#finishRecord(record, t0, mark);
      this.#events.swapFailed(record, coded);
      this.#retryRestore(job, coded);
      throw coded;
    } finally {
      hold.release();
    }
  }

  #retryRestore(job: Job, err: unknown): void {
    const attempt = job.attempt ?? 1;
    const role = this.#closed ? undefined : this.#roleOf(job.failed!);
    if (role === undefined) return;
    if (role === 'pinned') {
      // Its own build would not come back: its connections migrate to the current version, as at its max age.
      this.#log.error({ err }, `${job.failed!.label}: the pinned version could not be restored; its connections migrate to ${this.#current?.label}`);
      this.#request('max-age', 'max-age', false, undefined, job.failed).catch((e: unknown) => this.#log.error({ err: e }, `${job.failed!.label}: migrating its connections failed`));
      return;
    }
    if (attempt >= RESTORE_ATTEMPTS) {
      // Nothing could be restored: the failed version lets go of its events (their connections move on, unanswered).
      this.#log.error({ err }, `${job.failed!.label}: no version could be restored after ${attempt} attempts; its held events are dropped`);
      job.failed!.retire();
      return;
    }
    const timer = setTimeout(() => {
      if (this.#closed || this.#roleOf(job.failed!) === undefined) return;
      this.#queue.unshift({ ...job, waiters: [], attempt: attempt + 1 });
      this.#running ??= this.#runQueue();
    }, RESTORE_RETRY_MS);
    timer.unref();
  }

  /** issue 12: what a promote, a rollback or a max age does with the live versions; undefined: a plain rollback. */
  #foldPlan(job: Job): FoldPlan | undefined {
    const canary = this.#canary;
    const current = this.#current;
    const pinned = [...this.#pinned.keys()];
    // A verdict queued for a canary that a command already settled is stale.
    if (job.trigger === 'canary' && canary?.version !== job.version) throw new HotlineError('HOTLINE_E_NOTHING_TO_PROMOTE', 'the canary was already promoted or rolled back');
    if (job.kind === 'max-age') {
      const v = job.version!;
      if (!this.#pinned.has(v) || !current) throw new HotlineError('HOTLINE_E_NOTHING_TO_PROMOTE', `${v.label} already retired`);
      return { into: current, from: [v], outcome: 'retired' };
    }
    if (job.kind === 'promote') {
      if (canary) return { into: canary.version, from: [...pinned, canary.stable], outcome: 'promoted', previous: canary.stable.bundle };
      if (pinned.length > 0 && current) return { into: current, from: pinned, outcome: 'promoted' };
      throw new HotlineError('HOTLINE_E_NOTHING_TO_PROMOTE', 'only one version is live');
    }
    // rollback
    if (canary) {
      const error =
        job.trigger !== 'canary'
          ? undefined
          : job.failure
            ? new HotlineError('HOTLINE_E_CANARY', `${canary.version.label} failed (${job.failure.code}: ${job.failure.message}); rolled back to ${canary.stable.label}`, { cause: job.failure })
            : new HotlineError('HOTLINE_E_CANARY', `${canary.version.label} went over its error budget: ${formatRates(canary)}; rolled back to ${canary.stable.label}`);
      return { into: canary.stable, from: [canary.version], outcome: 'rolled-back', ...(error && { error }) };
    }
    const newest = pinned.at(-1);
    if (newest && current) return { into: newest, from: [current], outcome: 'rolled-back', previous: current.bundle };
    return undefined;
  }

  /**
   * issue 12: move every connection of `plan.from` into `plan.into`, which already serves with its own global state:
   * suspend (bounded by settleTimeout), `migrateConnection` for each (a throw aborts with nothing changed), then one
   * commit, then the emptied versions are disposed. 0 connections closed.
   */
  async #fold(job: Job, plan: FoldPlan): Promise<SwapRecord> {
    const d = this.#dispatcher;
    const { into, from } = plan;
    const t0 = performance.now();
    let mark = t0;
    const record: SwapRecord = {
      id: ++this.#swapIds,
      trigger: job.trigger,
      startedAt: new Date().toISOString(),
      from: from.map((v) => v.label).join(', '),
      to: into.label,
      hash: into.bundle.hash,
      outcome: 'aborted',
      phase: 'suspending',
      durations: {},
      totalMs: 0,
    };
    const enter = (phase: SwapPhase) => {
      const now = performance.now();
      if (this.#phase !== 'idle') record.durations[this.#phase as Exclude<SwapPhase, 'idle'>] = round(now - mark);
      mark = now;
      this.#phase = phase;
      record.phase = phase;
      this.#events.phase(phase, job.trigger);
    };
    let suspension: SuspendHold | undefined;
    /** The adopted states, committed at the switch; forgotten by `into` if the fold aborts. */
    const states: Array<[Connection, unknown]> = [];
    const hold = await this.#options.lock.acquire('swap', this.#options.settleTimeout);
    try {
      if (this.#closed) throw new HotlineError('HOTLINE_E_SWAP_CLOSED');
      enter('suspending');
      // Only the versions whose connections move are held: `into` keeps serving its own meanwhile. A failed (worker)
      // version runs nothing: its events wait in it and are handed over at the switch.
      suspension = d.suspend('fold', from);
      if (!(await d.whenIdle(this.#options.settleTimeout, from.filter((v) => v.failure === undefined)))) {
        throw new HotlineError('HOTLINE_E_SWAP_TIMEOUT', `handler(s) of ${record.from} still running after settleTimeout (${this.#options.settleTimeout} ms)`);
      }
      enter('migrating');
      for (const v of from) {
        const s = await this.#adoptInto(into, v);
        states.push(...s);
      }
      enter('switching');
      const canary = this.#canary;
      if (canary && (from.includes(canary.version) || into === canary.version)) {
        canary.stop();
        this.#canary = undefined;
        d.router = undefined;
      }
      d.target = into;
      this.#current = into;
      this.#unpin(into);
      for (const v of from) this.#unpin(v);
      for (const [conn, cs] of states) conn.state = cs;
      // Every connection still on them moves, adopted or not: one accepted while the adoption was awaited (worker
      // mode) is suspended before its open event, and opens on `into`.
      const known = new Set(states.map(([conn]) => conn));
      for (const v of from) for (const conn of this.#connectionsOf(v)) this.#move(conn, into, known);
      // A failed version's held events go on in `into`, in order, after the adoption that made their mirrors.
      for (const v of from) if (v.failure !== undefined) v.handOver?.(into);
      if (plan.previous) this.#previous = plan.previous;
      suspension.release();
      enter('disposing');
      for (const v of from) await this.#dispose(v);
      record.outcome = plan.outcome;
      if (plan.error) record.error = plan.error.toJSON();
      this.#finishRecord(record, t0, mark);
      if (plan.error) this.#log.warn({ swap: record, code: plan.error.code }, plan.error.message);
      this.#events.swapped(record, into.stats);
      return record;
    } catch (err) {
      into.forgetConnections?.(states.map(([conn]) => conn));
      suspension?.release();
      const coded = isHotlineError(err) ? err : new HotlineError('HOTLINE_E_MIGRATE_CONNECTION', messageOf(err), { cause: err });
      record.error = coded.toJSON();
      this.#finishRecord(record, t0, mark);
      this.#events.swapFailed(record, coded);
      throw coded;
    } finally {
      hold.release();
    }
  }

  #connectionsOf(v: VersionRuntime): Connection[] {
    const out: Connection[] = [];
    for (const conn of this.#dispatcher.connections.values()) if (conn.runtime === v) out.push(conn);
    return out;
  }

  /**
   * `migrateConnection` into `into` for the connections of live version `v`, from `v`'s state as it is now: exported
   * first, which in worker mode also brings the host's copy of each `conn.state` up to date (the authoritative one
   * is in `v`'s thread). A failed worker version gives its last checkpoint, or, with none, the host's copies.
   */
  async #adoptInto(into: VersionRuntime, v: VersionRuntime): Promise<Array<[Connection, unknown]>> {
    let from: PreviousVersion;
    try {
      from = await this.#hook(v, () => v.exportState(), 'HOTLINE_E_MIGRATE', 'HOTLINE_E_MIGRATE', 'the export of its state');
    } catch (err) {
      if (v.failure === undefined) throw err;
      from = { version: v.version, state: v.state };
    }
    return into.adoptConnections({ version: from.version, state: from.state }, this.#connectionsOf(v), this.#options.hookTimeout);
  }

  /** Every connection now runs on `v` (a plain swap's switch). */
  #moveAll(v: VersionRuntime, migrated: Array<[Connection, unknown]>): void {
    const d = this.#dispatcher;
    const known = new Set(migrated.map(([conn]) => conn));
    for (const conn of d.connections.values()) this.#move(conn, v, known);
  }

  /**
   * Move `conn` to `to`. One that is opened but was not migrated (`known`) is attached there with its state: a
   * session restored from the store while the migration was awaited (worker mode) has no mirror in `to` otherwise.
   * Not opened: its open event, queued behind the suspension, runs on `to`.
   */
  #move(conn: Connection, to: VersionRuntime, known: ReadonlySet<Connection>): void {
    if (conn.runtime === to) return;
    this.#dispatcher.move(conn, to);
    if (conn.opened && !known.has(conn)) to.attach?.(conn);
  }

  #pin(v: VersionRuntime, maxAge: number | undefined): void {
    this.#pinned.set(v, { since: Date.now(), maxAge, timer: this.#maxAgeTimer(v, maxAge) });
    this.#log.info(`${v.label} pinned: ${this.#dispatcher.countOf(v)} connection(s) stay on it${maxAge !== undefined ? ` for at most ${maxAge} ms` : ''}`);
  }

  #maxAgeTimer(v: VersionRuntime, delay: number | undefined): NodeJS.Timeout | undefined {
    if (delay === undefined) return undefined;
    const timer = setTimeout(() => {
      this.#request('max-age', 'max-age', false, undefined, v).catch((err: unknown) => {
        if (!isHotlineError(err, 'HOTLINE_E_NOTHING_TO_PROMOTE')) this.#log.error({ err }, `${v.label}: retiring at its max age failed`);
      });
    }, Math.max(0, delay));
    timer.unref();
    return timer;
  }

  /** A restore replaced pinned version `failed` by `next`: same place among the pinned, same age and max age. */
  #repin(failed: VersionRuntime, next: VersionRuntime): void {
    const entries = [...this.#pinned].map(([v, p]): [VersionRuntime, typeof p] => {
      if (v !== failed) return [v, p];
      clearTimeout(p.timer);
      const left = p.maxAge === undefined ? undefined : p.maxAge - (Date.now() - p.since);
      return [next, { since: p.since, maxAge: p.maxAge, timer: this.#maxAgeTimer(next, left) }];
    });
    this.#pinned = new Map(entries);
  }

  /** The role of a live version, or undefined once it is not live (replaced, retired). */
  #roleOf(v: VersionRuntime): 'default' | 'canary' | 'pinned' | undefined {
    if (v === this.#current) return 'default';
    if (this.#canary?.version === v) return 'canary';
    return this.#pinned.has(v) ? 'pinned' : undefined;
  }

  #unpin(v: VersionRuntime): void {
    const p = this.#pinned.get(v);
    if (!p) return;
    clearTimeout(p.timer);
    this.#pinned.delete(v);
  }

  #startCanary(next: VersionRuntime, stable: VersionRuntime, policy: Extract<Policy, { kind: 'canary' }>): void {
    const canary = new Canary(next, stable, policy, {
      random: this.#options.random ?? Math.random,
      decided: (verdict) => {
        const job = verdict === 'promote' ? this.promote('canary') : this.#request('rollback', 'canary', false, undefined, next);
        job.catch((err: unknown) => this.#log.error({ err }, `canary ${next.label}: ${verdict} failed`));
      },
    });
    this.#canary = canary;
    this.#dispatcher.router = canary.route;
  }

  #startProbation(v: VersionRuntime, trigger: SwapTrigger, hadPrevious: boolean): void {
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

function formatRates(c: Canary): string {
  const { canary, stable } = c.rates();
  const s = c.version.stats;
  return `${s.errors} errors in ${s.messages} messages (${(canary * 100).toFixed(1)}%, stable ${(stable * 100).toFixed(1)}%, budget +${(c.policy.maxErrorRate * 100).toFixed(1)}%)`;
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
