/**
 * Every side effect of the supervisor and its upgrades, behind one object (cloudflare/tableflip's `env`): forking a
 * worker, binding a listener, the admin socket, timers and the clock, process signals and exit. The real one is
 * `systemEnv()`; the unit tests (test/handoff/supervisor-unit.test.ts) pass a scripted one, with fake workers and a
 * clock they advance by hand, to drive every abort path and the restart backoff without a process or a timer.
 */
import type { ChildProcess } from 'node:child_process';
import { AdminServer, type AdminHandler } from '../admin/admin-server.js';
import { type Clock, systemClock } from './clock.js';
import { type BoundListener, bindListener } from './listeners.js';
import { forkWorker } from './worker-process.js';

export interface SupervisorEnv {
  /**
   * Start a worker process with its IPC channel (worker-process.ts `forkWorker`). `lane`: an upgrade's new worker,
   * with a handle lane, and a descriptor table sized like `oldPid`'s.
   */
  fork(o: { envFile: string | undefined; lane: boolean; oldPid: number | undefined }): ChildProcess;
  /** Bind a listening socket without listening (listeners.ts). Rejects HOTLINE_E_LISTEN. */
  bind(host: string, port: number): Promise<BoundListener>;
  /** The admin socket (admin-server.ts). */
  admin(path: string, handler: AdminHandler): { start(): Promise<void>; close(): Promise<void> };
  clock: Clock;
  /** Subscribe to a process signal. */
  onSignal(signal: NodeJS.Signals, fn: (signal: NodeJS.Signals) => void): void;
  /** End this process now (a second stop signal). */
  exit(code: number): void;
}

/** The real processes, sockets, timers and signals. */
export function systemEnv(): SupervisorEnv {
  return {
    fork: (o) => forkWorker(o.envFile, {}, o.lane, o.oldPid),
    bind: bindListener,
    admin: (path, handler) => new AdminServer(path, handler),
    clock: systemClock,
    onSignal: (signal, fn) => process.on(signal, fn),
    exit: (code) => process.exit(code),
  };
}

export type { Clock };
