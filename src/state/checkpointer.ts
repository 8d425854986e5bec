/**
 * Durable global state (issue 11): checkpoints of the serving version's global state, written at every swap, every
 * `interval` ms when it changed, and at shutdown, and restored at start through the plugin's `migrate` (the same
 * contract as a swap: `prev` is the checkpointed version and its state). So a crash, a kill -9 or a watchdog restart
 * loses only what changed since the last checkpoint (docs/reliability.md, "Checkpoints").
 *
 * "Changed" is told cheaply enough: the state is serialised at each tick and its SHA-256 compared with the last one
 * written; an unchanged state costs a serialisation, never a write. Nothing here can fail the host: a state that
 * cannot be serialised, is too large, or a disk that refuses the write is reported with a code (logged once per run
 * of the same failure, counted in status) and the previous checkpoint stands.
 *
 *   deferred ─activate─► active ─handOver─► handed-over
 *       │                  │                    │
 *       └──────────────────┴───────close────────┴──► closed
 *
 * `deferred`: a worker started for a process upgrade, before its commit. It restores nothing (the state comes with
 * the upgrade) and writes nothing (the old worker still serves, and writes). `handed-over`: the old worker after the
 * release: the state is the new worker's now, and a late write here would put an older state over its checkpoint.
 * While an upgrade moves connections (`moving()`), an active checkpointer skips its ticks for the same reason.
 */
import v8 from 'node:v8';
import type { Logger } from 'pino';
import { type ErrorCode, HotlineError, isHotlineError, messageOf } from '../errors.js';
import type { PreviousVersion } from '../plugin/contract.js';
import { CheckpointFile, sha256 } from './checkpoint-file.js';
import type { ResolvedStateOptions } from './options.js';

export type CheckpointPhase = 'deferred' | 'active' | 'handed-over' | 'closed';

/** What triggered a checkpoint. */
export type CheckpointTrigger = 'swap' | 'interval' | 'shutdown' | 'upgrade';

/** The serving version, as a checkpoint records it. */
export interface StateSnapshot {
  plugin: string;
  version: string;
  hash: string;
  state: unknown;
}

/** What the checkpointer reads of its host. */
export interface StateSource {
  /** The serving version and its state; undefined before the first load. */
  current(): StateSnapshot | undefined;
  /** True while a process upgrade moves the connections (the lock is held by an export or an adoption). */
  moving(): boolean;
}

/** Timers, so a test can tick the interval by hand. */
export interface CheckpointClock {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(timer: unknown): void;
  now(): number;
}

const systemClock: CheckpointClock = {
  setInterval: (fn, ms) => setInterval(fn, ms).unref(),
  clearInterval: (t) => clearInterval(t as NodeJS.Timeout),
  now: () => Date.now(),
};

/** What a restored checkpoint gives `migrate`: the usual `prev`, plus when it was written. */
export type RestoredVersion = PreviousVersion & { restoredAt: number };

/** `status().checkpoint`. */
export interface CheckpointStatus {
  dir: string;
  phase: CheckpointPhase;
  /** ms; 0: only at swaps and shutdown. */
  interval: number;
  maxBytes: number;
  writes: number;
  /** Ticks that found the state as last written (no write). */
  unchanged: number;
  failures: number;
  last?: { at: number; trigger: CheckpointTrigger; version: string; bytes: number };
  lastError?: { code: ErrorCode; message: string; at: number };
  /** The start: restored from a checkpoint (its version and time), or why not (its error). */
  restore?: { version: string; writtenAt: number; bytes: number } | { code: ErrorCode; message: string };
}

/** Restore attempts that died (crash, hang) before a checkpoint is refused instead of tried again. */
const MAX_RESTORE_ATTEMPTS = 2;

export class Checkpointer {
  #file: CheckpointFile;
  #options: ResolvedStateOptions;
  #source: StateSource;
  #log: Logger;
  #clock: CheckpointClock;
  #phase: CheckpointPhase;
  #timer: unknown;
  /** SHA-256 of the last payload on disk: what "unchanged" is judged by. */
  #lastDigest: string | undefined;
  /** The code of the failure being repeated: logged at its first occurrence only. */
  #failing: ErrorCode | undefined;
  #status: Omit<CheckpointStatus, 'phase'>;

  /** `deferred`: a worker started for a process upgrade (see the file comment). Throws HOTLINE_E_STATE_WRITE if the folder cannot be made. */
  constructor(options: ResolvedStateOptions, source: StateSource, log: Logger, deferred = false, clock: CheckpointClock = systemClock, file?: CheckpointFile) {
    this.#options = options;
    this.#file = file ?? new CheckpointFile(options.dir, options.maxBytes);
    this.#source = source;
    this.#log = log;
    this.#clock = clock;
    this.#phase = deferred ? 'deferred' : 'active';
    this.#status = { dir: this.#file.dir, interval: options.interval, maxBytes: options.maxBytes, writes: 0, unchanged: 0, failures: 0 };
  }

  get phase(): CheckpointPhase {
    return this.#phase;
  }

  get status(): CheckpointStatus {
    return { ...this.#status, phase: this.#phase };
  }

  /**
   * The checkpoint to start `plugin` from, or undefined: none, refused (corrupt, another plugin, restores that died),
   * or a deferred worker. A refusal is logged with its code and the host starts from init(). The caller runs migrate
   * and then calls restored(), with the error if migrate refused it.
   */
  restore(plugin: string): RestoredVersion | undefined {
    if (this.#phase !== 'active') return undefined;
    try {
      const ckpt = this.#file.read();
      if (!ckpt) return undefined;
      const { header } = ckpt;
      if (header.plugin !== plugin) {
        this.#file.setAside();
        throw new HotlineError('HOTLINE_E_STATE_CORRUPT', `the checkpoint is of plugin "${header.plugin}", this host runs "${plugin}"`);
      }
      const attempts = this.#file.restoreAttempts(header.sha256);
      if (attempts >= MAX_RESTORE_ATTEMPTS) {
        this.#file.setAside();
        this.#file.clearRestoring();
        throw new HotlineError('HOTLINE_E_STATE_RESTORE', `${attempts} restores of the checkpoint of ${plugin}@${header.version} died before they finished (a crash or a hang in migrate?); it was set aside`);
      }
      this.#file.markRestoring(header.sha256, attempts + 1);
      this.#lastDigest = header.sha256;
      this.#status.restore = { version: header.version, writtenAt: header.at, bytes: header.bytes };
      return { version: header.version, state: ckpt.state, restoredAt: header.at };
    } catch (err) {
      const coded = isHotlineError(err) ? err : new HotlineError('HOTLINE_E_STATE_CORRUPT', messageOf(err), { cause: err });
      this.#status.restore = coded.toJSON();
      this.#log.error({ code: coded.code, dir: this.#file.dir }, `${coded.message}; starting from init() with a fresh state`);
      return undefined;
    }
  }

  /** The restore's migrate ran: `err` if it refused the checkpoint (the host then keeps init()'s state). */
  restored(err?: unknown): void {
    this.#file.clearRestoring();
    if (err === undefined) {
      const r = this.#status.restore;
      if (r && 'version' in r) this.#log.info({ dir: this.#file.dir }, `global state restored from the checkpoint of ${r.version} written at ${new Date(r.writtenAt).toISOString()}`);
      return;
    }
    // The state on disk is not what runs now: kept aside for a human, and init()'s state is written in its place.
    this.#file.setAside();
    this.#lastDigest = undefined;
    const coded = new HotlineError('HOTLINE_E_STATE_RESTORE', `migrate() refused the checkpoint: ${messageOf(err)}`, { cause: err });
    this.#status.restore = coded.toJSON();
    this.#log.error({ code: coded.code, err: (err as { cause?: unknown }).cause ?? err }, `${coded.message}; starting from init() with a fresh state`);
  }

  /** Start the interval (after the first load). */
  start(): void {
    if (this.#timer !== undefined || this.#options.interval === 0 || this.#phase === 'closed' || this.#phase === 'handed-over') return;
    this.#timer = this.#clock.setInterval(() => this.save('interval'), this.#options.interval);
  }

  /**
   * Write a checkpoint of the serving version's state if it changed. Returns true when one was written. Never
   * throws: a failure is reported (see the file comment).
   */
  save(trigger: CheckpointTrigger): boolean {
    if (this.#phase !== 'active' || this.#source.moving()) return false;
    const snap = this.#source.current();
    if (!snap) return false;
    try {
      let payload: Buffer;
      try {
        payload = v8.serialize(snap.state);
      } catch (err) {
        throw new HotlineError('HOTLINE_E_STATE_SERIALIZE', `the global state of ${snap.plugin}@${snap.version} cannot be checkpointed: ${messageOf(err)}`, { cause: err });
      }
      if (payload.byteLength > this.#options.maxBytes) {
        throw new HotlineError('HOTLINE_E_STATE_TOO_LARGE', `the global state of ${snap.plugin}@${snap.version} is ${payload.byteLength} bytes serialised, over state.maxBytes (${this.#options.maxBytes})`);
      }
      const digest = sha256(payload);
      if (digest === this.#lastDigest) {
        this.#status.unchanged++;
        this.#recovered();
        return false;
      }
      const at = this.#clock.now();
      this.#file.write({ plugin: snap.plugin, version: snap.version, hash: snap.hash, at }, payload, digest);
      this.#lastDigest = digest;
      this.#status.writes++;
      this.#status.last = { at, trigger, version: snap.version, bytes: payload.byteLength };
      this.#recovered();
      return true;
    } catch (err) {
      this.#failed(isHotlineError(err) ? err : new HotlineError('HOTLINE_E_STATE_WRITE', messageOf(err), { cause: err }));
      return false;
    }
  }

  /** An upgrade's new worker committed: the state is here now. Checkpoint it at once, then as usual. */
  activate(): void {
    if (this.#phase !== 'deferred') return;
    this.#phase = 'active';
    this.save('upgrade');
    this.start();
  }

  /** An upgrade's old worker released its connections: the state is the new worker's; write no more. */
  handOver(): void {
    if (this.#phase === 'closed') return;
    this.#phase = 'handed-over';
    this.#stopTimer();
  }

  /** The last checkpoint (when active), then nothing more. Idempotent. */
  close(): void {
    if (this.#phase === 'closed') return;
    this.save('shutdown');
    this.#stopTimer();
    this.#phase = 'closed';
  }

  #stopTimer(): void {
    if (this.#timer === undefined) return;
    this.#clock.clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #failed(err: HotlineError): void {
    this.#status.failures++;
    this.#status.lastError = { ...err.toJSON(), at: this.#clock.now() };
    if (this.#failing === err.code) return;
    this.#failing = err.code;
    this.#log.error({ code: err.code, err: err.cause ?? err }, `${err.message}; the previous checkpoint stands`);
  }

  #recovered(): void {
    if (this.#failing === undefined) return;
    this.#log.info(`checkpoints are written again (after ${this.#failing})`);
    this.#failing = undefined;
  }
}
