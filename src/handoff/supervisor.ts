/**
 * The supervisor: the process `hotline start` runs, whose PID never changes (systemd, Docker and PM2 watch it). It
 * owns the listening sockets and the admin socket, runs the host in a worker process, forwards signals, restarts a
 * crashed worker with backoff, kills and restarts a hung one (watchdog.ts), and runs upgrades (upgrade.ts). Modelled
 * on cloudflare/tableflip: one upgrade at a time, a concurrent request is refused by name, a new worker that never
 * becomes ready is killed, and every side effect (fork, bind, admin socket, clock, signals, exit) comes in through
 * one `env` (supervisor-env.ts).
 */
import path from 'node:path';
import type { ReloadPolicy } from '../swap/reload-policy.js';
import type { Logger } from 'pino';
import type { AdminCommand } from '../admin/protocol.js';
import type { Bundle } from '../build/bundler.js';
import { HotlineError } from '../errors.js';
import { checkInternals } from '../internals/self-check.js';
import { DEFAULT_PROBATION } from '../swap/probation.js';
import { loadTls } from '../transport/tls.js';
import { checkBuild } from './build-report.js';
import { LastKnownGood, type LkgStatus } from './last-known-good.js';
import type { BoundListener } from './listeners.js';
import type { FromWorker, ListenerSpec, WorkerConfig } from './protocol.js';
import { type SupervisorEnv, systemEnv } from './supervisor-env.js';
import { heartbeatInterval, Watchdog } from './watchdog.js';
import { Upgrade, type UpgradeProgress, type UpgradeSummary } from './upgrade.js';
import { WorkerProcess, fromWire } from './worker-process.js';
import type { HttpAdminConfig, Readiness } from '../ops/http-admin.js';
import type { HttpAdminAddress } from '../ops/http-address.js';
import { SupervisorOps } from '../ops/supervisor-ops.js';
import { type FinalMetrics, NO_FINAL_METRICS, finalMetrics, workerFamilies } from './worker-metrics.js';

export interface SupervisorOptions {
  config: Omit<WorkerConfig, 'upgrade'>;
  /** Admin socket path (reload, rollback, status, upgrade). */
  admin: string;
  /** KEY=VALUE file read at every worker start (so an upgrade picks up changes). */
  envFile?: string;
  /** How long a new worker may take to load and report ready. Default 30 000 ms. */
  readyTimeout?: number;
  /** How long the new worker may go without acknowledging a handed-over item. Default 10 000 ms. */
  ackTimeout?: number;
  /** How long the old worker's in-flight handlers may take to settle before the handoff. Default 5 000 ms. */
  settleTimeout?: number;
  /**
   * A worker (the serving one, an upgrade's new one, a restarted one) whose event loop sends no heartbeat for this
   * long is killed (SIGKILL) and, if it was serving, restarted with backoff: HOTLINE_E_WORKER_HUNG. 0: off.
   * Default: `config.tuning.watchdogTimeout`, else 10 000 ms.
   */
  watchdogTimeout?: number;
  /** issue 14: the HTTP admin (metrics, API, event stream, dashboard), served by the supervisor across upgrades. */
  httpAdmin?: HttpAdminConfig;
  log: Logger;
}



/** What status says about the watchdog. */
export interface WatchdogStatus {
  timeoutMs: number;
  /** Workers killed as hung since the supervisor started. */
  hangs: number;
  /** The latest one. */
  last?: { code: 'HOTLINE_E_WORKER_HUNG'; message: string; pid: number; silentMs: number; at: number };
}

/** A listener the supervisor bound; `tls`: its workers speak TLS on it. */
export interface SupervisorAddress {
  transport: 'ws' | 'tcp';
  host: string;
  port: number;
  tls: boolean;
}

export type SupervisorState = 'starting' | 'running' | 'upgrading' | 'stopping' | 'stopped';

/** Restart backoff for a crashed worker: 100 ms doubling to 5 s; reset after a worker lived 10 s. */
export const BACKOFF_MIN_MS = 100;
export const BACKOFF_MAX_MS = 5_000;
export const BACKOFF_RESET_MS = 10_000;

/**
 * Restarted workers that die before they are ready, in a row, before the supervisor gives up (HOTLINE_E_WORKER_CRASH_LOOP,
 * exit 1): a build, known good or not, that cannot even start any more (its environment changed, a module it needs is
 * gone) would otherwise be restarted forever. A worker that gets ready resets the count.
 */
export const MAX_FAILED_STARTS = 3;

/** The watchdog's default: a worker silent this long is hung (src/host/options.ts has the same default). */
export const DEFAULT_WATCHDOG_TIMEOUT = 10_000;

export class Supervisor {
  #o: SupervisorOptions;
  #env: SupervisorEnv;
  #state: SupervisorState = 'starting';
  #listeners: BoundListener[] = [];
  #addresses: SupervisorAddress[] = [];
  #worker: WorkerProcess | undefined;
  #workerStartedAt = 0;
  #backoff = BACKOFF_MIN_MS;
  #restartTimer: unknown;
  #restarts = 0;
  /** The wait before the latest restart, reported in status so the backoff can be seen (and tested) without timing. */
  #lastRestartDelay: number | undefined;
  #admin: { start(): Promise<void>; close(): Promise<void> } | undefined;
  #upgrade: Upgrade | undefined;
  /** The running upgrade, up to the adoption of its outcome (a stop waits for it). */
  #upgradeDone: Promise<UpgradeSummary> | undefined;
  #history: UpgradeSummary[] = [];
  #plugin: { name: string; version: string } | undefined;
  #stopped: Promise<number> | undefined;
  #exitWaiter: ((code: number) => void) | undefined;
  /** One watchdog per live worker process. */
  #dogs = new Map<WorkerProcess, Watchdog>();
  #watchdog: WatchdogStatus;
  /** Which build a restarted worker starts on (issue 11): the last known good one. */
  #lkg: LastKnownGood;
  /** A build reported by a worker not serving yet (an upgrade's new one): it counts once that worker is adopted. */
  #reported = new WeakMap<WorkerProcess, Bundle>();
  /** Workers that said ready: one that dies before is a failed start. */
  #ready = new WeakSet<WorkerProcess>();
  #failedStarts = 0;
  /** issue 14: the HTTP admin and the metrics totals across workers (src/ops), when asked for. */
  #ops: SupervisorOps | undefined;

  /** `env`: the real processes, sockets, timers and signals unless a test scripts them. */
  constructor(options: SupervisorOptions, env: SupervisorEnv = systemEnv()) {
    this.#o = options;
    this.#env = env;
    this.#watchdog = { timeoutMs: options.watchdogTimeout ?? options.config.tuning?.watchdogTimeout ?? DEFAULT_WATCHDOG_TIMEOUT, hangs: 0 };
    // The host's probation window is the supervisor's too: a build survives it in the worker, then here.
    const probation = options.config.tuning?.probation;
    const windowMs = probation === false ? 0 : (probation?.window ?? DEFAULT_PROBATION.window);
    const beat = heartbeatInterval(this.#watchdog.timeoutMs);
    this.#lkg = new LastKnownGood(env.clock, windowMs, () => this.#beating(beat), beat);
    if (options.httpAdmin) {
      this.#ops = new SupervisorOps(options.httpAdmin, {
        command: (cmd, o) => this.#command(cmd, o.force),
        readiness: () => this.#readiness(),
        workerFamilies: () => workerFamilies(this.#worker, this.#env.clock),
      });
    }
  }

  /** Where the HTTP admin listens, if it does. */
  get httpAdminAddress(): HttpAdminAddress | undefined {
    return this.#ops?.address;
  }

  #readiness(): Readiness {
    if (this.#state === 'starting') return 'starting';
    if (this.#state === 'stopping' || this.#state === 'stopped') return 'shutting-down';
    return this.#worker?.alive ? 'ready' : 'starting';
  }

  get state(): SupervisorState {
    return this.#state;
  }

  get workerPid(): number {
    return this.#worker?.pid ?? 0;
  }

  get plugin(): { name: string; version: string } | undefined {
    return this.#plugin;
  }

  /** Bound listener addresses (real ports). */
  get addresses(): readonly SupervisorAddress[] {
    return this.#addresses;
  }

  /** Bind the listeners, open the admin socket, start the first worker and wait until it serves. */
  async start(): Promise<void> {
    // The supervisor binds with net._createServerHandle (src/internals/): an unknown Node fails here, before a bind.
    checkInternals();
    // Each worker reads the certificate itself; checked here too, so a bad one fails before anything is bound.
    for (const spec of this.#o.config.listen) if (spec.tls) loadTls(spec.tls, `listener ${spec.host}:${spec.port}`);
    for (const spec of this.#o.config.listen) {
      let b: BoundListener;
      try {
        b = await this.#env.bind(spec.host, spec.port);
      } catch (err) {
        for (const l of this.#listeners) l.handle.close();
        this.#state = 'stopped';
        throw err;
      }
      this.#listeners.push(b);
      this.#addresses.push({ transport: spec.transport, host: b.host, port: b.port, tls: spec.tls !== undefined });
    }
    this.#admin = this.#env.admin(this.#o.admin, (cmd, options) => this.#command(cmd, options.force, options.policy));
    try {
      await this.#admin.start();
      await this.#ops?.start();
      const w = this.#spawn(false);
      const ready = await this.#waitReady(w, this.#o.readyTimeout ?? 30_000);
      this.#plugin = ready;
      this.#adopt(w);
      this.#state = 'running';
    } catch (err) {
      await this.#admin.close();
      await this.#ops?.close();
      for (const l of this.#listeners) l.handle.close();
      this.#state = 'stopped';
      throw err;
    }
  }

  /** Run a process upgrade. Rejects HOTLINE_E_UPGRADE_IN_PROGRESS while one runs; an abort resolves with its error. */
  async upgrade(): Promise<UpgradeSummary> {
    if (this.#state === 'upgrading') throw new HotlineError('HOTLINE_E_UPGRADE_IN_PROGRESS', 'a process upgrade is already running');
    if (this.#state !== 'running' || !this.#worker) throw new HotlineError('HOTLINE_E_SWAP_CLOSED', `the supervisor is ${this.#state}`);
    this.#state = 'upgrading';
    const old = this.#worker;
    const up = new Upgrade({
      old,
      spawn: () => this.#spawn(true),
      listeners: this.#listeners,
      readyTimeout: this.#o.readyTimeout ?? 30_000,
      ackTimeout: this.#o.ackTimeout ?? 10_000,
      settleTimeout: this.#o.settleTimeout ?? 5_000,
      clock: this.#env.clock,
    });
    this.#upgrade = up;
    const final = this.#ops ? finalMetrics(old, this.#ops, this.#env.clock) : NO_FINAL_METRICS;
    const done = this.#runUpgrade(up, final);
    this.#upgradeDone = done;
    return done;
  }

  async #runUpgrade(up: Upgrade, finalMetrics: FinalMetrics): Promise<UpgradeSummary> {
    // The event stream's progress: what `hotline status` shows, published every 100 ms while the upgrade runs.
    const clock = this.#env.clock;
    let progressTimer: unknown;
    const tick = () => {
      this.#ops?.upgradeProgress({ ...up.progress });
      progressTimer = clock.setTimeout(tick, 100);
    };
    if (this.#ops) tick();
    const summary = await up.run();
    clock.clearTimeout(progressTimer);
    finalMetrics.stop();
    this.#upgrade = undefined;
    this.#upgradeDone = undefined;
    this.#history.push(summary);
    this.#ops?.upgradeEnded(summary);
    if (summary.outcome === 'committed') {
      // The old worker's last counts join the running totals before the new worker's are read.
      await finalMetrics.done;
      this.#ops?.workerUpgraded(summary.fromPid);
      this.#adopt(up.next!);
      this.#o.log.info({ upgrade: summary }, `upgrade committed: worker ${summary.fromPid} -> ${summary.toPid}, moved ${summary.moved}, sent away ${summary.sentAway}, failed ${summary.failed}, ${summary.durationMs} ms`);
    } else {
      this.#o.log.error({ upgrade: summary }, `upgrade aborted, worker ${summary.fromPid} keeps serving: ${summary.error?.code}: ${summary.error?.message}`);
    }
    if (this.#state === 'upgrading') this.#state = 'running';
    // The old worker died during an aborted upgrade: restart as after any crash.
    if (this.#worker && !this.#worker.alive && this.#state === 'running') this.#died(this.#worker, 'during an upgrade');
    return summary;
  }

  /** Stop gracefully: the worker closes its clients (1012) and exits; resolves with its exit code. Idempotent. */
  stop(): Promise<number> {
    this.#stopped ??= this.#stop(0);
    return this.#stopped;
  }

  /** Resolves with the exit code once the supervisor has stopped (by stop() or a signal). */
  whenStopped(): Promise<number> {
    if (this.#stopped) return this.#stopped;
    return new Promise((resolve) => (this.#exitWaiter = resolve));
  }

  /** SIGHUP reloads, SIGUSR2 upgrades, SIGTERM/SIGINT stop (twice: kill the worker and exit 1). */
  handleSignals(): void {
    const on = this.#env.onSignal;
    on('SIGHUP', () => {
      this.#worker?.request('reload', 'signal').catch((err: unknown) => this.#o.log.error({ err }, 'SIGHUP reload failed'));
    });
    on('SIGUSR2', () => {
      this.upgrade().catch((err: unknown) => this.#o.log.error({ err }, 'SIGUSR2 upgrade refused'));
    });
    let stopping = false;
    const onStop = (signal: NodeJS.Signals) => {
      if (stopping) {
        this.#worker?.kill('SIGKILL');
        this.#env.exit(1);
        return;
      }
      stopping = true;
      this.#o.log.info(`${signal}: shutting down gracefully`);
      void this.stop();
    };
    on('SIGTERM', onStop);
    on('SIGINT', onStop);
  }

  /** `code`: the exit code when no worker is left to give one (1 after a crash loop). */
  async #stop(code: number): Promise<number> {
    this.#state = 'stopping';
    this.#env.clock.clearTimeout(this.#restartTimer);
    this.#lkg.stop();
    // A hung worker would never answer the shutdown below: during a stop it is judged by the shutdown timeout, so the
    // stop ends within about shutdownTimeout (a healthy closing worker keeps beating every second at most).
    const stopSilence = Math.max(this.#o.config.tuning?.shutdownTimeout ?? 5_000, 3 * heartbeatInterval(this.#watchdog.timeoutMs));
    for (const dog of this.#dogs.values()) dog.tighten(stopSilence);
    // An upgrade ends first: aborted, or committed if it is past its commit point; then whichever worker serves is
    // the one told to shut down. Otherwise a new worker committing meanwhile would outlive the stop.
    if (this.#upgrade) {
      this.#upgrade.cancel(new HotlineError('HOTLINE_E_SWAP_CLOSED', 'the supervisor is stopping'));
      await this.#upgradeDone;
    }
    const w = this.#worker;
    if (w?.alive) {
      w.send({ t: 'shutdown' });
      const exit = await w.exited;
      code = exit.code ?? 1;
    }
    await this.#admin?.close();
    await this.#ops?.close();
    for (const l of this.#listeners) l.handle.close();
    this.#state = 'stopped';
    this.#exitWaiter?.(code);
    return code;
  }

  /**
   * `restart`: a worker started because the serving one died, on `build` (the last known good one) rather than
   * the disk; its sessions mark the messages their clients replay (poison messages, session.ts).
   */
  #spawn(upgrade: boolean, restart?: { build: Bundle | undefined }): WorkerProcess {
    // An upgrade worker takes over the old worker's descriptors: its table is sized like the old one (worker-process.ts).
    const w = new WorkerProcess(this.#env.fork({ envFile: this.#o.envFile, lane: upgrade, oldPid: upgrade ? this.#worker?.pid : undefined }));
    this.#watch(w);
    this.#listeners.forEach((l, index) => w.send({ t: 'listener', index, bound: { host: l.host, port: l.port } }, l.handle));
    // The watchdog's timeout travels with the tuning, so the worker beats at the pace this supervisor judges by.
    const tuning = { ...this.#o.config.tuning, watchdogTimeout: this.#watchdog.timeoutMs };
    const build = restart?.build;
    const metrics = this.#ops !== undefined;
    w.send({
      t: 'start',
      config: { ...this.#o.config, tuning, upgrade, lane: upgrade, ...(build && { build }), ...(restart && { afterDeath: true }), ...(metrics && { metrics }) },
    });
    return w;
  }

  #waitReady(w: WorkerProcess, timeoutMs: number): Promise<{ name: string; version: string }> {
    return new Promise((resolve, reject) => {
      const clock = this.#env.clock;
      const timer = clock.setTimeout(() => {
        w.kill('SIGKILL');
        reject(new HotlineError('HOTLINE_E_UPGRADE_READY_TIMEOUT', `the worker was not ready within ${timeoutMs} ms`));
      }, timeoutMs);
      const onMessage = (msg: FromWorker) => {
        if (msg.t === 'ready') {
          clock.clearTimeout(timer);
          w.child.off('message', onMessage);
          resolve(msg.plugin);
        } else if (msg.t === 'fatal') {
          clock.clearTimeout(timer);
          w.child.off('message', onMessage);
          reject(fromWire(msg.error));
        }
      };
      w.child.on('message', onMessage);
      void w.exited.then(({ code, signal }) => {
        clock.clearTimeout(timer);
        reject(w.killedFor ?? new HotlineError('HOTLINE_E_WORKER_EXIT', `the worker exited before it was ready (${signal ?? `code ${code}`})`));
      });
    });
  }

  /** Make `w` the serving worker and watch it for crashes. */
  #adopt(w: WorkerProcess): void {
    this.#worker = w;
    this.#workerStartedAt = this.#env.clock.now();
    const reported = this.#reported.get(w);
    if (reported) this.#lkg.serving(reported);
    this.#reported.delete(w);
    void w.exited.then(({ code, signal }) => {
      if (this.#worker !== w || this.#state === 'stopping' || this.#state === 'stopped') return;
      if (this.#state === 'upgrading') return; // the running upgrade sees it and aborts; upgrade() restarts.
      this.#died(w, signal ?? `code ${code}`);
    });
  }

  /**
   * The serving worker is gone: restart it, on the last known good build (a death during a build's probation falls
   * back to the one before it), unless restarted workers keep dying before they are even ready.
   */
  #died(w: WorkerProcess, exit: string): void {
    const hung = w.killedFor;
    const how = hung ? 'was hung and killed' : `exited (${exit})`;
    if (!this.#ready.has(w) && ++this.#failedStarts >= MAX_FAILED_STARTS) return this.#giveUp(w, how);
    const fallback = this.#lkg.died(hung?.code ?? 'HOTLINE_E_WORKER_EXIT', w.pid);
    if (fallback) this.#o.log.error({ code: fallback.code, from: fallback.from, to: fallback.to, cause: fallback.cause }, fallback.message);
    else this.#o.log.error({ code: hung?.code ?? 'HOTLINE_E_WORKER_EXIT' }, `worker ${w.pid} ${how}; restarting`);
    this.#scheduleRestart();
  }

  #giveUp(w: WorkerProcess, how: string): void {
    const err = new HotlineError(
      'HOTLINE_E_WORKER_CRASH_LOOP',
      `${this.#failedStarts} restarted workers in a row died before they were ready (the latest, ${w.pid}, ${how}); not restarting again`,
    );
    // Logged only: with no worker left, status has no one to answer it (the admin socket closes with the stop).
    this.#o.log.fatal({ code: err.code }, err.message);
    this.#stopped ??= this.#stop(1);
  }

  /** A build a worker reports serving: checked, then known to #lkg once that worker serves. */
  #onServing(w: WorkerProcess, raw: unknown): void {
    let build: Bundle;
    try {
      build = checkBuild(raw, path.resolve(this.#o.config.entry));
    } catch (err) {
      this.#o.log.error({ code: (err as HotlineError).code, pid: w.pid }, (err as Error).message);
      return;
    }
    if (this.#worker === w) this.#lkg.serving(build);
    else this.#reported.set(w, build);
  }

  /** The serving worker's loop beat within two heartbeat intervals (or the watchdog is off). */
  #beating(beatMs: number): boolean {
    const dog = this.#worker && this.#dogs.get(this.#worker);
    return !dog || dog.silentMs < 2 * beatMs;
  }

  /**
   * Watch `w`'s heartbeat from its start to its exit, in every phase: serving, an upgrade's new worker loading and
   * adopting (it has no listener yet, but plugin code runs there too: init, migrate), a restarted worker, a stop.
   */
  #watch(w: WorkerProcess): void {
    const dog = new Watchdog(this.#env.clock, this.#watchdog.timeoutMs, (silentMs) => this.#onHung(w, silentMs));
    this.#dogs.set(w, dog);
    w.child.on('message', (msg: FromWorker) => {
      if (msg?.t === 'beat') return dog.beat();
      dog.alive();
      if (msg?.t === 'ready') {
        this.#ready.add(w);
        this.#failedStarts = 0;
      } else if (msg?.t === 'serving') {
        this.#onServing(w, msg.build);
      } else if (msg?.t === 'ops-event' && this.#worker === w) {
        this.#ops?.workerEvent(msg.event);
      }
    });
    void w.exited.then(() => {
      dog.stop();
      this.#dogs.delete(w);
    });
  }

  /**
   * The worker's loop is blocked. Inline mode cannot preempt plugin code, so the process is killed; whoever waits
   * for it sees its exit: the serving worker is restarted (#adopt), an upgrade aborts and resumes the other worker,
   * a stop ends.
   */
  #onHung(w: WorkerProcess, silentMs: number): void {
    const err = new HotlineError(
      'HOTLINE_E_WORKER_HUNG',
      `worker ${w.pid} sent no heartbeat for ${silentMs} ms (watchdogTimeout ${this.#watchdog.timeoutMs} ms): its event loop is blocked; killed`,
    );
    this.#watchdog.hangs++;
    this.#ops?.workerHung();
    this.#watchdog.last = { code: 'HOTLINE_E_WORKER_HUNG', message: err.message, pid: w.pid, silentMs, at: this.#env.clock.now() };
    this.#o.log.error({ code: err.code, pid: w.pid, silentMs, state: this.#state }, err.message);
    w.kill('SIGKILL', err);
  }

  #scheduleRestart(): void {
    if (this.#env.clock.now() - this.#workerStartedAt > BACKOFF_RESET_MS) this.#backoff = BACKOFF_MIN_MS;
    const delay = this.#backoff;
    this.#lastRestartDelay = delay;
    this.#backoff = Math.min(this.#backoff * 2, BACKOFF_MAX_MS);
    this.#restartTimer = this.#env.clock.setTimeout(() => {
      if (this.#state !== 'running') return;
      const w = this.#spawn(false, { build: this.#lkg.build });
      this.#restarts++;
      this.#ops?.workerRestarted(w.pid);
      this.#adopt(w);
      this.#waitReady(w, this.#o.readyTimeout ?? 30_000).then(
        (plugin) => (this.#plugin = plugin),
        (err: unknown) => this.#o.log.error({ err }, 'the restarted worker failed to start'),
      );
    }, delay);
  }

  async #command(cmd: AdminCommand, force = false, policy?: ReloadPolicy): Promise<unknown> {
    if (cmd === 'upgrade') return this.upgrade();
    if (cmd !== 'status' && this.#state === 'upgrading') {
      throw new HotlineError('HOTLINE_E_UPGRADE_IN_PROGRESS', `cannot ${cmd} during a process upgrade`);
    }
    const w = this.#worker;
    if (!w?.alive) throw new HotlineError('HOTLINE_E_WORKER_EXIT', 'the worker is restarting; try again');
    const result = await w.request(cmd, undefined, force, policy);
    if (cmd !== 'status') return result;
    return { ...(result as object), supervisor: this.#status() };
  }

  #status(): {
    pid: number;
    workerPid: number;
    state: SupervisorState;
    restarts: number;
    restartDelayMs: number | undefined;
    upgrade: UpgradeProgress | undefined;
    upgrades: UpgradeSummary[];
    watchdog: WatchdogStatus;
    lastKnownGood: LkgStatus;
  } {
    return {
      pid: process.pid,
      workerPid: this.workerPid,
      state: this.#state,
      restarts: this.#restarts,
      restartDelayMs: this.#lastRestartDelay,
      upgrade: this.#upgrade?.progress,
      upgrades: this.#history.slice(-10),
      watchdog: { ...this.#watchdog },
      lastKnownGood: this.#lkg.status(),
    };
  }
}

export type { ListenerSpec };
