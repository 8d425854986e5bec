/**
 * One loaded version of a plugin, as the swapper and the connections see it, whatever runs its code (DESIGN.md §8):
 * - inline (src/swap/version.ts): `vm.compileFunction` in the host's own thread, the fastest, preempted by nothing;
 * - worker (src/runtime/worker-version.ts): its own `worker_thread` with `resourceLimits`, terminated and restored
 *   when it hangs, crashes or runs out of memory (issue 11).
 *
 * A runtime is a dispatch target (open, message, close) plus the swap's steps: init, check, migrate, export state,
 * stop, dispose, retire. The swapper applies hookTimeout around the steps (swap/run-hook.ts); a runtime refuses
 * plugin calls once retired.
 */
import type { Bundle } from '../build/bundler.js';
import type { Connection } from '../connection/connection.js';
import type { DispatchTarget } from '../connection/dispatcher.js';
import type { HotlineError } from '../errors.js';
import type { PreviousVersion } from '../plugin/contract.js';

import type { Isolation, VersionStats } from './version-stats.js';

export type { Isolation, VersionStats } from './version-stats.js';

/** What a version's state is when it leaves it: at a swap, at a checkpoint, to a process upgrade. */
export interface ExportedState extends PreviousVersion {
  /**
   * `conn.state` by connection id, when the runtime keeps the authoritative copy elsewhere than the host's
   * Connection (worker mode). Absent for inline: the host's copy is the state.
   */
  connStates?: Array<[string, unknown]>;
}

/** The result of migrating into a version, committed by the caller at its switch. */
export interface MigratedState {
  /** The new `conn.state` of each opened connection. */
  connStates: Array<[Connection, unknown]>;
}

/** @internal Callbacks a runtime reports through. */
export interface RuntimeHooks {
  /** A handler of this version failed (counted in its stats already). */
  onHandlerError(version: VersionRuntime, err: HotlineError, conn?: Connection): void;
  /**
   * issue 11, worker mode: the version's thread hung (HOTLINE_E_HANDLER_HUNG), crashed (HOTLINE_E_VERSION_CRASHED) or
   * ran out of memory (HOTLINE_E_VERSION_OOM) and was terminated. Events sent to it meanwhile wait in it, in order,
   * until `handOver()` gives them to the version that replaces it.
   */
  onFailure?(version: VersionRuntime, err: HotlineError): void;
}

/** @internal See the file comment. */
export interface VersionRuntime extends DispatchTarget {
  readonly isolation: Isolation;
  readonly bundle: Bundle;
  readonly stats: VersionStats;
  /** `name@version`, for messages. */
  readonly label: string;
  /** The plugin's name and version strings. */
  readonly name: string;
  readonly version: string;
  readonly retired: boolean;
  /** Worker mode: why the version stopped (hung, crashed, out of memory); its events wait in it for handOver(). */
  readonly failure?: HotlineError | undefined;
  /**
   * The global state as the host knows it: the live object inline, the last checkpoint in worker mode. Assignable
   * inline only (a process upgrade's import goes through migrate()).
   */
  readonly state: unknown;
  /** Run the plugin's `init` (if any); its result becomes the state. */
  init(): unknown;
  /** Run the plugin's `check` (if any). Throws or rejects to refuse the version. */
  check(): unknown;
  /**
   * Run `migrate` from `from` into this version (which sets its state: it is not serving yet), then
   * `migrateConnection` for each opened connection. The connections' states are the caller's to commit.
   */
  migrate(from: PreviousVersion, connections: Iterable<Connection>, hookTimeout: number): Promise<MigratedState>;
  /**
   * issue 12: `migrateConnection` for connections moving here from another live version (a pinned one retired, a
   * canary promoted or rolled back) while this one serves with its own global state. Their `conn.state` is the
   * host's copy, brought up to date by the other version's exportState(). The states are the caller's to commit;
   * a throw (HOTLINE_E_MIGRATE_CONNECTION) changes nothing. A worker also starts mirroring them here: the caller
   * calls forgetConnections() if it does not commit.
   */
  adoptConnections(from: PreviousVersion, connections: Iterable<Connection>, hookTimeout: number): Promise<Array<[Connection, unknown]>>;
  /** issue 12: an adoption that was not committed: stop mirroring those connections (worker). */
  forgetConnections?(connections: Iterable<Connection>): void;
  /** The state to hand the next version (structured-cloned out of a worker: HOTLINE_E_STATE_CLONE if it cannot). */
  exportState(): Promise<ExportedState>;
  /** The version now serves: start what it runs by itself (a worker's checkpoints). */
  serving(): void;
  /** Stop its timers and process listeners (at the switch, before dispose). */
  stopTimers(): void;
  /** Run the plugin's `dispose` (if any). */
  dispose(): unknown;
  /** Stop everything, close what it left open, refuse further calls (a worker is terminated). Idempotent. */
  retire(): void;
  /** Map a plugin error's stack to the TypeScript sources. */
  mapError<T>(err: T): T;
  /**
   * Worker mode, after onFailure: give the events that were in flight or arrived since to `next`, in order; a
   * message in flight at two failures is dropped instead (HOTLINE_E_POISON_MESSAGE). Inline: nothing to hand over.
   */
  handOver?(next: VersionRuntime): void;
}
