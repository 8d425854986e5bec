/**
 * The supervisor: the process `hotline start` runs, whose PID never changes (systemd, Docker and PM2 watch it). It
 * owns the listening sockets and the admin socket, runs the host in a worker process, forwards signals, restarts a
 * crashed worker with backoff, and runs upgrades (upgrade.ts). Modelled on cloudflare/tableflip: one upgrade at a
 * time, a concurrent request is refused by name, a new worker that never becomes ready is killed, and every side
 * effect (fork, bind, admin socket, clock, signals, exit) comes in through one `env` (supervisor-env.ts).
 */
import type { Logger } from 'pino';
import type { AdminCommand } from '../admin/protocol.js';
import { HotlineError } from '../errors.js';
import { loadTls } from '../transport/tls.js';
import type { BoundListener } from './listeners.js';
import type { FromWorker, ListenerSpec, WorkerConfig } from './protocol.js';
import { type SupervisorEnv, systemEnv } from './supervisor-env.js';
import { Upgrade, type UpgradeProgress, type UpgradeSummary } from './upgrade.js';
import { WorkerProcess, fromWire } from './worker-process.js';

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
  log: Logger;
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

  /** `env`: the real processes, sockets, timers and signals unless a test scripts them. */
  constructor(options: SupervisorOptions, env: SupervisorEnv = systemEnv()) {
    this.#o = options;
    this.#env = env;
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
    this.#admin = this.#env.admin(this.#o.admin, (cmd, options) => this.#command(cmd, options.force));
    try {
      await this.#admin.start();
      const w = this.#spawn(false);
      const ready = await this.#waitReady(w, this.#o.readyTimeout ?? 30_000);
      this.#plugin = ready;
      this.#adopt(w);
      this.#state = 'running';
    } catch (err) {
      await this.#admin.close();
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
    const done = this.#runUpgrade(up);
    this.#upgradeDone = done;
    return done;
  }

  async #runUpgrade(up: Upgrade): Promise<UpgradeSummary> {
    const summary = await up.run();
    this.#upgrade = undefined;
    this.#upgradeDone = undefined;
    this.#history.push(summary);
    if (summary.outcome === 'committed') {
      this.#adopt(up.next!);
      this.#o.log.info({ upgrade: summary }, `upgrade committed: worker ${summary.fromPid} -> ${summary.toPid}, moved ${summary.moved}, sent away ${summary.sentAway}, failed ${summary.failed}, ${summary.durationMs} ms`);
    } else {
      this.#o.log.error({ upgrade: summary }, `upgrade aborted, worker ${summary.fromPid} keeps serving: ${summary.error?.code}: ${summary.error?.message}`);
    }
    if (this.#state === 'upgrading') this.#state = 'running';
    // The old worker died during an aborted upgrade: restart as after any crash.
    if (!this.#worker?.alive && this.#state === 'running') this.#scheduleRestart();
    return summary;
  }

  /** Stop gracefully: the worker closes its clients (1012) and exits; resolves with its exit code. Idempotent. */
  stop(): Promise<number> {
    this.#stopped ??= this.#stop();
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

  async #stop(): Promise<number> {
    this.#state = 'stopping';
    this.#env.clock.clearTimeout(this.#restartTimer);
    // An upgrade ends first: aborted, or committed if it is past its commit point; then whichever worker serves is
    // the one told to shut down. Otherwise a new worker committing meanwhile would outlive the stop.
    if (this.#upgrade) {
      this.#upgrade.cancel(new HotlineError('HOTLINE_E_SWAP_CLOSED', 'the supervisor is stopping'));
      await this.#upgradeDone;
    }
    let code = 0;
    const w = this.#worker;
    if (w?.alive) {
      w.send({ t: 'shutdown' });
      const exit = await w.exited;
      code = exit.code ?? 1;
    }
    await this.#admin?.close();
    for (const l of this.#listeners) l.handle.close();
    this.#state = 'stopped';
    this.#exitWaiter?.(code);
    return code;
  }

  #spawn(upgrade: boolean): WorkerProcess {
    // An upgrade worker takes over the old worker's descriptors: its table is sized like the old one (worker-process.ts).
    const w = new WorkerProcess(this.#env.fork({ envFile: this.#o.envFile, lane: upgrade, oldPid: upgrade ? this.#worker?.pid : undefined }));
    this.#listeners.forEach((l, index) => w.send({ t: 'listener', index, bound: { host: l.host, port: l.port } }, l.handle));
    w.send({ t: 'start', config: { ...this.#o.config, upgrade, lane: upgrade } });
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
        reject(new HotlineError('HOTLINE_E_WORKER_EXIT', `the worker exited before it was ready (${signal ?? `code ${code}`})`));
      });
    });
  }

  /** Make `w` the serving worker and watch it for crashes. */
  #adopt(w: WorkerProcess): void {
    this.#worker = w;
    this.#workerStartedAt = this.#env.clock.now();
    void w.exited.then(({ code, signal }) => {
      if (this.#worker !== w || this.#state === 'stopping' || this.#state === 'stopped') return;
      if (this.#state === 'upgrading') return; // the running upgrade sees it and aborts; upgrade() restarts.
      this.#o.log.error({ code: 'HOTLINE_E_WORKER_EXIT' }, `worker ${w.pid} exited (${signal ?? `code ${code}`}); restarting`);
      this.#scheduleRestart();
    });
  }

  #scheduleRestart(): void {
    if (this.#env.clock.now() - this.#workerStartedAt > BACKOFF_RESET_MS) this.#backoff = BACKOFF_MIN_MS;
    const delay = this.#backoff;
    this.#lastRestartDelay = delay;
    this.#backoff = Math.min(this.#backoff * 2, BACKOFF_MAX_MS);
    this.#restartTimer = this.#env.clock.setTimeout(() => {
      if (this.#state !== 'running') return;
      const w = this.#spawn(false);
      this.#restarts++;
      this.#adopt(w);
      this.#waitReady(w, this.#o.readyTimeout ?? 30_000).then(
        (plugin) => (this.#plugin = plugin),
        (err: unknown) => this.#o.log.error({ err }, 'the restarted worker failed to start'),
      );
    }, delay);
  }

  async #command(cmd: AdminCommand, force = false): Promise<unknown> {
    if (cmd === 'upgrade') return this.upgrade();
    if (cmd !== 'status' && this.#state === 'upgrading') {
      throw new HotlineError('HOTLINE_E_UPGRADE_IN_PROGRESS', `cannot ${cmd} during a process upgrade`);
    }
    const w = this.#worker;
    if (!w?.alive) throw new HotlineError('HOTLINE_E_WORKER_EXIT', 'the worker is restarting; try again');
    const result = await w.request(cmd, undefined, force);
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
  } {
    return {
      pid: process.pid,
      workerPid: this.workerPid,
      state: this.#state,
      restarts: this.#restarts,
      restartDelayMs: this.#lastRestartDelay,
      upgrade: this.#upgrade?.progress,
      upgrades: this.#history.slice(-10),
    };
  }
}

export type { ListenerSpec };
