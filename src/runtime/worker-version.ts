/**
 * A worker-mode version (issue 11): the plugin runs in its own `worker_thread` (version-worker-main.ts) with
 * `resourceLimits`; this object is its host-side half, a dispatch target like the inline Version.
 *
 * Each connection has at most one event in flight (the host's per-connection order), so the events this version
 * holds are bounded by the connections. Each is a PendingEvent, a thenable the Connection waits on: resolved when
 * the worker reports the handler done, after the actions it took (sends, closes) were applied, in order.
 *
 * Containment: the version watches its own hangs (the dispatcher's abandon sweep is for inline), and
 * - an event in flight past hangTimeout, or a worker whose heartbeat is frozen that long → HOTLINE_E_HANDLER_HUNG;
 * - the thread dying (an uncaught exception, process.exit) → HOTLINE_E_VERSION_CRASHED;
 * - `resourceLimits` hit → HOTLINE_E_VERSION_OOM.
 * Then the worker is terminated (terminate() preempts a busy loop), the version is `failed`, and events keep
 * queueing in it until the swapper's restore hands them to the version that replaces it (handOver). The message that
 * caused the failure gets a strike; at its second it is dropped (HOTLINE_E_POISON_MESSAGE) instead of replayed.
 *
 * Phases: loading → ready (loaded, not serving: init, check, migrate) → serving → retired; failed from ready or serving.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { Bundle } from '../build/bundler.js';
import type { Connection } from '../connection/connection.js';
import type { Dispatcher } from '../connection/dispatcher.js';
import { LatencySample } from '../connection/latency-sample.js';
import { type ErrorCode, HotlineError, isHotlineError, messageOf } from '../errors.js';
import type { CloseInfo, MessageData, PreviousVersion } from '../plugin/contract.js';
import type { ExportedState, MigratedState, RuntimeHooks, VersionRuntime, VersionStats } from './version-runtime.js';
import {
  AC_BROADCAST, AC_CLOSE, AC_DONE, AC_ERROR, AC_FAIL, AC_HUNG, AC_LOG, AC_SEND, AC_STATE, ACTION_STRIDE, type CallOp, EV_ATTACH, EV_CLOSE, EV_MESSAGE,
  EV_OPEN, fromWire, isWireError, isWorkerReply, type MigrateArg, SAB_HEARTBEAT, SAB_RUNNING, SAB_WORDS, type WorkerBoot,
  type WorkerReply,
} from './worker-protocol.js';
import { type ResourceLimits, spawnThread, type SpawnWorker, type WorkerLike } from './worker-thread.js';

export type { ResourceLimits, SpawnWorker, WorkerLike } from './worker-thread.js';

/** How often a serving worker's state is exported and kept as its checkpoint (what a restore starts from). */
export const CHECKPOINT_INTERVAL_MS = 1_000;
/** Strikes after which a message is dropped instead of replayed (HOTLINE_E_POISON_MESSAGE). */
export const POISON_STRIKES = 2;

export interface WorkerRuntimeOptions {
  hangTimeout: number;
  /** How long a worker may take to load its bundle and answer a call that has no hookTimeout of its own. */
  loadTimeout: number;
  resourceLimits: ResourceLimits;
  log: Logger;
  /** Default: a real worker_thread running version-worker-main.ts. */
  spawn?: SpawnWorker;
}

type Phase = 'loading' | 'ready' | 'serving' | 'failed' | 'retired';

/** An event the worker has not finished, and what the Connection waits on. */
class PendingEvent {
  onOk: (() => void) | undefined;
  onErr: ((err: unknown) => void) | undefined;
  /** Failures this event was the cause of (see the file comment). */
  strikes = 0;

  constructor(
    public seq: number,
    readonly conn: Connection,
    readonly op: number,
    readonly a: unknown,
    readonly b: unknown,
  ) {}

  then(onOk: () => void, onErr: (err: unknown) => void): void {
    this.onOk = onOk;
    this.onErr = onErr;
  }
}

interface Call {
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/** What an `export` call must answer: checked before the host takes any of it (every byte from the worker is). */
function isExport(out: unknown): out is ExportedState {
  if (typeof out !== 'object' || out === null) return false;
  const o = out as ExportedState;
  if (typeof o.version !== 'string') return false;
  return o.connStates === undefined || (Array.isArray(o.connStates) && o.connStates.every((e) => Array.isArray(e) && e.length === 2 && typeof e[0] === 'string'));
}

const LOG_LEVELS: Record<number, 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

export class WorkerVersion implements VersionRuntime {
  readonly isolation = 'worker' as const;
  readonly watchesOwnHangs = true;
  readonly bundle: Bundle;
  readonly stats: VersionStats;
  readonly log: Logger;
  /** issue 12: sampled handler latency (dispatch to done, the round trip through the worker included), for status. */
  readonly latency = new LatencySample();
  #phase: Phase = 'loading';
  /** The thread has exited (terminated or died): what a test of a retired version's release looks at. */
  #exited = false;
  #worker: WorkerLike;
  #port: MessagePort;
  #sab: Int32Array;
  #d: Dispatcher;
  #hooks: RuntimeHooks;
  #options: WorkerRuntimeOptions;
  #name = '?';
  #version = '?';
  #seq = 0;
  #pending = new Map<number, PendingEvent>();
  #outbox: unknown[] = [];
  #flushScheduled = false;
  #calls = new Map<number, Call>();
  #callIds = 0;
  #checkpoint: ExportedState | undefined;
  #monitor: NodeJS.Timeout | undefined;
  #checkpointTimer: NodeJS.Timeout | undefined;
  #checkpointing = false;
  #lastBeat = 0;
  #lastBeatAt = 0;
  #terminating = false;
  #cloneWarned = false;
  #ready: { resolve: () => void; reject: (e: HotlineError) => void } | undefined;
  /** Set at the failure: why this version stopped. */
  failure: HotlineError | undefined;

  private constructor(seq: number, bundle: Bundle, dispatcher: Dispatcher, hooks: RuntimeHooks, options: WorkerRuntimeOptions) {
    this.bundle = bundle;
    this.#d = dispatcher;
    this.#hooks = hooks;
    this.#options = options;
    this.log = options.log.child({ seq, isolation: 'worker' });
    this.stats = { seq, name: '?', version: '?', hash: bundle.hash, loadedAt: Date.now(), messages: 0, errors: 0, isolation: 'worker' };
    const sab = new SharedArrayBuffer(SAB_WORDS * Int32Array.BYTES_PER_ELEMENT);
    this.#sab = new Int32Array(sab);
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    const boot: WorkerBoot = {
      code: bundle.code,
      map: bundle.map,
      entry: bundle.entry,
      hash: bundle.hash,
      label: `v${seq}`,
      seq,
      sab,
      heartbeatMs: Math.max(5, Math.floor(options.hangTimeout / 8)),
      hangTimeout: options.hangTimeout,
      logLevel: options.log.level,
    };
    this.#worker = (options.spawn ?? spawnThread)({ workerData: { boot, port: port2 }, transferList: [port2], resourceLimits: options.resourceLimits });
    port1.on('message', this.#onMessage);
    this.#worker.on('error', this.#onError);
    this.#worker.on('exit', this.#onExit);
  }

  /** Start a worker for `bundle` and wait until its plugin is loaded and validated (bounded by loadTimeout). */
  static async load(seq: number, bundle: Bundle, dispatcher: Dispatcher, hooks: RuntimeHooks, options: WorkerRuntimeOptions): Promise<WorkerVersion> {
    const v = new WorkerVersion(seq, bundle, dispatcher, hooks, options);
    let timer: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        v.#ready = { resolve, reject };
        timer = setTimeout(
          () => reject(new HotlineError('HOTLINE_E_PLUGIN_EVAL', `the plugin module did not finish loading in its worker within ${options.loadTimeout} ms`)),
          options.loadTimeout,
        );
      });
    } catch (err) {
      v.retire();
      throw err;
    } finally {
      clearTimeout(timer);
      v.#ready = undefined;
    }
    return v;
  }

  get label(): string {
    return `${this.#name}@${this.#version}`;
  }

  get name(): string {
    return this.#name;
  }

  get version(): string {
    return this.#version;
  }

  get retired(): boolean {
    return this.#phase === 'retired';
  }

  get phase(): Phase {
    return this.#phase;
  }

  /** The last checkpoint's global state (the live state is in the worker). */
  get state(): unknown {
    return this.#checkpoint?.state;
  }

  /** Events waiting for the worker (in flight, or held while failed). */
  get pendingCount(): number {
    return this.#pending.size;
  }

  // ---- dispatch (hot path) ----

  open(conn: Connection): unknown {
    return this.#post(EV_OPEN, conn, conn.transport, conn.remoteAddress);
  }

  /** A restored session's connection (dispatcher.ts): mirrored in the worker before any event of it. */
  attach(conn: Connection): void {
    // Failed: the restore's migrate mirrors every opened connection of the version, this one too.
    if (this.#phase !== 'ready' && this.#phase !== 'serving') return;
    this.#outbox.push(EV_ATTACH, 0, conn.id, [conn.transport, conn.remoteAddress], conn.state);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(this.#flush);
    }
  }

  message(conn: Connection, data: MessageData): unknown {
    this.stats.messages++;
    return this.#post(EV_MESSAGE, conn, data, undefined);
  }

  close(conn: Connection, info: CloseInfo): unknown {
    return this.#post(EV_CLOSE, conn, info.code, info.reason);
  }

  #post(op: number, conn: Connection, a: unknown, b: unknown): PendingEvent | undefined {
    if (this.#phase === 'retired') return undefined;
    // 0 means "none" in the SAB's RUNNING word.
    let seq = ++this.#seq;
    if (seq > 0x7fffffff) seq = this.#seq = 1;
    const ev = new PendingEvent(seq, conn, op, a, b);
    this.#pending.set(seq, ev);
    if (this.#phase === 'failed') return ev;
    this.#send(ev);
    return ev;
  }

  #send(ev: PendingEvent): void {
    this.#outbox.push(ev.op, ev.seq, ev.conn.id, ev.a, ev.b);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      // One postMessage per turn: every connection readable in this poll phase goes in one batch (bench/p2w).
      setImmediate(this.#flush);
    }
  }

  #flush = (): void => {
    this.#flushScheduled = false;
    if (this.#outbox.length === 0 || this.#phase === 'failed' || this.#phase === 'retired') return;
    const batch = this.#outbox;
    this.#outbox = [];
    this.#port.postMessage(batch);
  };

  #onMessage = (msg: unknown): void => {
    if (this.#phase === 'failed' || this.#phase === 'retired') return;
    if (Array.isArray(msg)) return this.#applyActions(msg);
    if (!isWorkerReply(msg)) return this.#protocolError('a malformed message');
    this.#onReply(msg);
  };

  #applyActions(a: unknown[]): void {
    const conns = this.#d.connections;
    for (let i = 0; i + ACTION_STRIDE <= a.length; i += ACTION_STRIDE) {
      const op = a[i];
      const x = a[i + 1];
      const y = a[i + 2];
      switch (op) {
        case AC_SEND: {
          const conn = typeof x === 'string' ? conns.get(x) : undefined;
          // issue 12: only this version's own connections: one that moved to another live version is not its any more.
          if (conn && conn.runtime === this && (typeof y === 'string' || y instanceof Uint8Array)) conn.send(y);
          break;
        }
        case AC_DONE: {
          const ev = this.#pending.get(x as number);
          if (!ev) break;
          this.#pending.delete(ev.seq);
          ev.onOk?.();
          break;
        }
        case AC_FAIL: {
          const ev = this.#pending.get(x as number);
          if (!ev) break;
          this.#pending.delete(ev.seq);
          ev.onErr?.(fromWire(isWireError(y) ? y : { message: 'a handler failed' }));
          break;
        }
        case AC_STATE: {
          const conn = typeof x === 'string' ? conns.get(x) : undefined;
          if (conn && conn.runtime === this) conn.state = y;
          break;
        }
        case AC_CLOSE: {
          const conn = typeof x === 'string' ? conns.get(x) : undefined;
          if (conn && conn.runtime === this && Array.isArray(y)) {
            try {
              conn.close(y[0] as number, y[1] as string);
            } catch (err) {
              this.handlerError(err, conn);
            }
          }
          break;
        }
        case AC_BROADCAST:
          // issue 12: scoped to this version's connections unless the plugin asked for every version's (`y`).
          if (typeof x === 'string' || x instanceof Uint8Array) for (const conn of conns.values()) if (conn.isOpen && (y === true || conn.runtime === this)) conn.send(x);
          break;
        case AC_ERROR:
          this.handlerError(fromWire(isWireError(x) ? x : { message: 'an error' }));
          break;
        case AC_LOG:
          this.#relayLog(y);
          break;
        case AC_HUNG: {
          if (!Array.isArray(x)) return this.#protocolError('a malformed hang report');
          const hung = x.flatMap((seq) => this.#pending.get(seq as number) ?? []);
          if (hung.length === 0) break;
          this.#fail('HOTLINE_E_HANDLER_HUNG', `an async handler did not settle within hangTimeout (${this.#options.hangTimeout} ms)`, hung);
          return;
        }
        default:
          return this.#protocolError(`an unknown action ${String(op)}`);
      }
    }
  }

  #relayLog(line: unknown): void {
    if (typeof line !== 'string') return;
    try {
      const { level, msg, ...rest } = JSON.parse(line) as { level?: number; msg?: string };
      const fn = LOG_LEVELS[level ?? 30] ?? 'info';
      this.log[fn]({ plugin: this.#name, version: this.#version, ...rest }, msg ?? '');
    } catch {
      // A line pino wrote is JSON; anything else is dropped, not logged as the host.
    }
  }

  #onReply(msg: WorkerReply): void {
    switch (msg.t) {
      case 'ready':
        if (this.#phase !== 'loading') return this.#protocolError('"ready" after loading');
        this.#name = msg.name;
        this.#version = msg.version;
        this.stats.name = msg.name;
        this.stats.version = msg.version;
        this.#phase = 'ready';
        this.#ready?.resolve();
        return;
      case 'load-error': {
        const err = fromWire(msg.error);
        const code = isHotlineError(err) ? err.code : 'HOTLINE_E_PLUGIN_EVAL';
        this.#ready?.reject(isHotlineError(err) ? err : new HotlineError(code, `the plugin threw while loading: ${err.message}`, { cause: err }));
        return;
      }
      case 'result': {
        const call = this.#calls.get(msg.id);
        if (!call) return;
        this.#calls.delete(msg.id);
        if (msg.ok) call.resolve(msg.value);
        else call.reject(fromWire(msg.error));
        return;
      }
    }
  }

  #protocolError(what: string): void {
    this.#fail('HOTLINE_E_WORKER_PROTOCOL', `the worker sent ${what}`);
  }

  // ---- errors ----

  handlerError(err: unknown, conn?: Connection): void {
    const coded = isHotlineError(err) && err.code !== 'HOTLINE_E_HANDLER'
      ? new HotlineError(err.code, `${this.label}: ${err.message}`, { cause: err.cause ?? err })
      : new HotlineError('HOTLINE_E_HANDLER', `${this.label}: ${messageOf(err)}`, { cause: err });
    this.stats.errors++;
    this.stats.lastError = { code: coded.code, message: coded.message };
    this.#hooks.onHandlerError(this, coded, conn);
  }

  mapError<T>(err: T): T {
    // Mapped in the worker, which has the source map.
    return err;
  }

  // ---- calls (the swap's steps) ----

  #call(op: CallOp, arg?: unknown): Promise<unknown> {
    if (this.#phase === 'failed' || this.#phase === 'retired') {
      return Promise.reject(this.failure ?? new HotlineError('HOTLINE_E_SWAP_CLOSED', `${this.label} is retired`));
    }
    // Events already queued go first: a call is answered after them, in the order the host made them.
    this.#flush();
    return new Promise((resolve, reject) => {
      const id = ++this.#callIds;
      this.#calls.set(id, { resolve, reject });
      try {
        this.#port.postMessage({ t: 'call', id, op, arg });
      } catch (err) {
        this.#calls.delete(id);
        reject(new HotlineError('HOTLINE_E_STATE_CLONE', `${this.label}: ${op}: the value cannot cross into the worker: ${messageOf(err)}`, { cause: err }));
      }
    });
  }

  init(): Promise<unknown> {
    return this.#call('init');
  }

  check(): Promise<unknown> {
    return this.#call('check');
  }

  async migrate(from: PreviousVersion, connections: Iterable<Connection>, hookTimeout: number): Promise<MigratedState> {
    const list: Connection[] = [];
    const conns: MigrateArg['conns'] = [];
    for (const c of connections) {
      if (!c.opened) continue;
      list.push(c);
      conns.push([c.id, c.transport, c.remoteAddress, c.state]);
    }
    const arg: MigrateArg = { from: { version: from.version, state: from.state }, conns };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new HotlineError('HOTLINE_E_MIGRATE', `${this.label}: migrate() did not settle within ${hookTimeout} ms`)), hookTimeout);
    });
    try {
      const out = (await Promise.race([this.#call('migrate', arg), timeout])) as Array<[string, unknown]>;
      const byId = new Map(out);
      const connStates: Array<[Connection, unknown]> = list.map((c) => [c, byId.get(c.id)]);
      return { connStates };
    } catch (err) {
      if (isHotlineError(err)) throw err;
      throw new HotlineError('HOTLINE_E_MIGRATE', `${this.label}: migrate() failed: ${messageOf(err)}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  /** issue 12: connections moving in from another live version (version-runtime.ts), through the worker's `adopt`. */
  async adoptConnections(from: PreviousVersion, connections: Iterable<Connection>, hookTimeout: number): Promise<Array<[Connection, unknown]>> {
    const list: Connection[] = [];
    const conns: MigrateArg['conns'] = [];
    for (const c of connections) {
      if (!c.opened) continue;
      list.push(c);
      conns.push([c.id, c.transport, c.remoteAddress, c.state]);
    }
    if (list.length === 0) return [];
    const arg: MigrateArg = { from: { version: from.version, state: from.state }, conns };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new HotlineError('HOTLINE_E_MIGRATE_CONNECTION', `${this.label}: migrateConnection() did not finish for ${list.length} connection(s) within ${hookTimeout} ms`)), hookTimeout);
    });
    try {
      const out = await Promise.race([this.#call('adopt', arg), timeout]);
      if (!Array.isArray(out)) throw new HotlineError('HOTLINE_E_WORKER_PROTOCOL', `${this.label}: a malformed adopt result`);
      const byId = new Map(out as Array<[string, unknown]>);
      return list.map((c) => [c, byId.get(c.id)]);
    } catch (err) {
      // A late answer must not leave mirrors behind for connections that stay where they are.
      this.forgetConnections(list);
      if (isHotlineError(err)) throw err;
      throw new HotlineError('HOTLINE_E_MIGRATE_CONNECTION', `${this.label}: migrateConnection() failed: ${messageOf(err)}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  forgetConnections(connections: Iterable<Connection>): void {
    const ids = [...connections].map((c) => c.id);
    if (ids.length > 0 && (this.#phase === 'ready' || this.#phase === 'serving')) void this.#call('forget', ids).catch(() => undefined);
  }

  /** Serving: the live state, cloned out of the worker. Failed: the last checkpoint (or a rejection if none). */
  async exportState(): Promise<ExportedState> {
    if (this.#phase === 'failed' || this.#phase === 'retired') {
      if (this.#checkpoint) return this.#checkpoint;
      throw this.failure ?? new HotlineError('HOTLINE_E_SWAP_CLOSED', `${this.label} is retired and has no checkpoint`);
    }
    const out = await this.#call('export');
    if (!isExport(out)) {
      this.#protocolError('a malformed export');
      throw this.failure ?? new HotlineError('HOTLINE_E_WORKER_PROTOCOL', `${this.label}: a malformed export`);
    }
    this.#keepCheckpoint(out);
    return out;
  }

  #keepCheckpoint(out: ExportedState): void {
    this.#checkpoint = { version: out.version, state: out.state };
    const conns = this.#d.connections;
    for (const [id, cs] of out.connStates ?? []) {
      const conn = conns.get(id);
      if (conn && conn.runtime === this) conn.state = cs;
    }
  }

  /** A restore's starting point when this version had none of its own: the state it was migrated from. */
  seedCheckpoint(from: PreviousVersion): void {
    this.#checkpoint ??= { version: from.version, state: from.state };
  }

  serving(): void {
    if (this.#phase !== 'ready') return;
    this.#phase = 'serving';
    this.#lastBeat = Atomics.load(this.#sab, SAB_HEARTBEAT);
    this.#lastBeatAt = performance.now();
    const every = Math.max(5, this.#options.hangTimeout / 4);
    this.#monitor = setInterval(this.#watch, every);
    this.#monitor.unref();
    this.#checkpointTimer = setInterval(this.#takeCheckpoint, CHECKPOINT_INTERVAL_MS);
    this.#checkpointTimer.unref();
    this.#takeCheckpoint();
  }

  #takeCheckpoint = (): void => {
    if (this.#checkpointing || this.#phase !== 'serving') return;
    this.#checkpointing = true;
    this.#call('export').then(
      (out) => {
        this.#checkpointing = false;
        if (this.#phase !== 'serving') return;
        if (isExport(out)) this.#keepCheckpoint(out);
        else this.#protocolError('a malformed checkpoint');
      },
      (err: unknown) => {
        this.#checkpointing = false;
        if (this.#phase !== 'serving' || this.#cloneWarned) return;
        this.#cloneWarned = true;
        this.log.warn({ code: (err as HotlineError).code, err }, `${this.label}: no checkpoint of its state: ${messageOf(err)}; a restore starts from the last one it has`);
      },
    );
  };

  stopTimers(): void {
    if (this.#phase === 'ready' || this.#phase === 'serving') void this.#call('stop').catch(() => undefined);
  }

  dispose(): Promise<unknown> {
    this.#stopWatching();
    return this.#call('dispose');
  }

  // ---- containment ----

  /**
   * The host's half of hang detection: a heartbeat frozen for hangTimeout means the worker's loop is blocked (a busy
   * loop in a handler or a timer). Judged by a change between two ticks, so a host thread that was itself busy does
   * not read as a frozen worker. Async hangs are judged in the worker (AC_HUNG, worker-protocol.ts).
   */
  #watch = (): void => {
    if (this.#phase !== 'serving') return;
    const now = performance.now();
    const beat = Atomics.load(this.#sab, SAB_HEARTBEAT);
    if (beat !== this.#lastBeat) {
      this.#lastBeat = beat;
      this.#lastBeatAt = now;
      return;
    }
    const limit = this.#options.hangTimeout;
    if (now - this.#lastBeatAt <= limit) return;
    this.#fail('HOTLINE_E_HANDLER_HUNG', `its worker's event loop was blocked for over hangTimeout (${limit} ms)`);
  };

  #onError = (err: Error): void => {
    const oom = (err as { code?: string }).code === 'ERR_WORKER_OUT_OF_MEMORY';
    if (this.#phase === 'loading') {
      this.#ready?.reject(new HotlineError(oom ? 'HOTLINE_E_VERSION_OOM' : 'HOTLINE_E_PLUGIN_EVAL', `the plugin's worker died while loading: ${messageOf(err)}`, { cause: err }));
      return;
    }
    if (oom) this.#fail('HOTLINE_E_VERSION_OOM', `its worker ran out of memory (workerLimits.maxOldGenerationSizeMb ${this.#options.resourceLimits.maxOldGenerationSizeMb})`);
    else this.#fail('HOTLINE_E_VERSION_CRASHED', `its worker died of an uncaught exception: ${messageOf(err)}`);
  };

  /** The version's thread has exited (terminated at retire, or dead). */
  get threadExited(): boolean {
    return this.#exited;
  }

  #onExit = (code: number): void => {
    this.#exited = true;
    if (this.#terminating) return;
    if (this.#phase === 'loading') {
      this.#ready?.reject(new HotlineError('HOTLINE_E_PLUGIN_EVAL', `the plugin's worker exited with code ${code} while loading`));
      return;
    }
    this.#fail('HOTLINE_E_VERSION_CRASHED', `its worker exited with code ${code}`);
  };

  /**
   * Terminate the worker and hold every event until handOver(). Strikes: the event whose handler was running
   * synchronously (the SAB's RUNNING word), and the async handlers the worker reported past hangTimeout.
   */
  #fail(code: ErrorCode, why: string, asyncHung: PendingEvent[] = []): void {
    if (this.#phase === 'failed' || this.#phase === 'retired' || this.#phase === 'loading') return;
    const wasServing = this.#phase === 'serving';
    this.#phase = 'failed';
    this.#stopWatching();
    const running = Atomics.load(this.#sab, SAB_RUNNING);
    const hit = running !== 0 ? this.#pending.get(running) : undefined;
    const culprits = hit ? [hit, ...asyncHung] : asyncHung;
    for (const ev of culprits) ev.strikes++;
    this.#terminate();
    const where = culprits.length > 0 ? ` (in flight: ${culprits.map((ev) => `connection ${ev.conn.id}`).join(', ')})` : '';
    const err = new HotlineError(code, `${this.label}: ${why}${where}; terminated`);
    this.failure = err;
    this.stats.errors++;
    this.stats.lastError = { code, message: err.message };
    for (const call of this.#calls.values()) call.reject(err);
    this.#calls.clear();
    this.#outbox = [];
    // A version not serving yet (init, check, migrate) fails its swap through the rejected call; only a serving one is restored.
    if (wasServing) this.#hooks.onFailure?.(this, err);
  }

  /**
   * Give the held events to `next` in the order they were posted, except those at their second strike: dropped with
   * HOTLINE_E_POISON_MESSAGE (Connection.dropPoison: a session's client gets a `drop` frame, any other connection
   * is closed with 1011).
   */
  handOver(next: VersionRuntime): void {
    if (!(next instanceof WorkerVersion)) throw new HotlineError('HOTLINE_E_CONFIG', 'a worker-mode version hands over to a worker-mode version only');
    const events = [...this.#pending.values()];
    this.#pending.clear();
    for (const ev of events) {
      if (ev.strikes >= POISON_STRIKES) {
        const err = new HotlineError(
          'HOTLINE_E_POISON_MESSAGE',
          `connection ${ev.conn.id}: its ${ev.op === EV_MESSAGE ? 'message' : ev.op === EV_OPEN ? 'open' : 'close'} was in flight at ${ev.strikes} failures of the version; dropped, not handed over again`,
        );
        ev.conn.dropPoison(err);
        ev.onErr?.(err);
        continue;
      }
      next.#adopt(ev);
    }
  }

  #adopt(ev: PendingEvent): void {
    let seq = ++this.#seq;
    if (seq > 0x7fffffff) seq = this.#seq = 1;
    ev.seq = seq;
    this.#pending.set(seq, ev);
    if (this.#phase === 'failed') return;
    this.#send(ev);
  }

  #stopWatching(): void {
    clearInterval(this.#monitor);
    clearInterval(this.#checkpointTimer);
    this.#monitor = undefined;
    this.#checkpointTimer = undefined;
  }

  #terminate(): void {
    if (this.#terminating) return;
    this.#terminating = true;
    this.#port.close();
    void this.#worker.terminate();
  }

  retire(): void {
    if (this.#phase === 'retired') return;
    const held = this.#phase === 'failed' ? [...this.#pending.values()] : [];
    this.#phase = 'retired';
    this.#stopWatching();
    this.#terminate();
    for (const call of this.#calls.values()) call.reject(new HotlineError('HOTLINE_E_SWAP_CLOSED', `${this.label} was retired`));
    this.#calls.clear();
    // Events still held by a failed version nobody took over: the connections must move on.
    this.#pending.clear();
    for (const ev of held) ev.onErr?.(this.failure ?? new HotlineError('HOTLINE_E_SWAP_CLOSED'));
  }
}
