/**
 * One worker child process as the supervisor sees it: typed messages and awaitable replies, over a child that the
 * supervisor's `env.fork` started (supervisor-env.ts: `forkWorker` below, or a scripted fake in the unit tests), so
 * its logic does not depend on how a process is started.
 */
import { type ChildProcess, fork } from 'node:child_process';
import type { ReloadPolicy } from '../swap/reload-policy.js';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseEnv } from 'node:util';
import { HotlineError } from '../errors.js';
import type { FromWorker, ToWorker, WireError } from './protocol.js';
import { withMallocEnv } from '../host/malloc-env.js';

const here = fileURLToPath(import.meta.url);
/** worker-main.js under dist/, worker-main.ts when run from sources through tsx (tests). */
const WORKER_MAIN = path.join(path.dirname(here), 'worker-main' + path.extname(here));

/** The environment variable that names the descriptor an upgrade worker closes at start (see reservedFd). */
export const FD_RESERVE_ENV = 'HOTLINE_FD_RESERVE';

/** Descriptor-table slots an upgrade worker starts with, at most (16,384: 128 KiB of kernel memory). */
const FD_RESERVE_MAX = 16_384;
/** Below this, the few growths of a small table cost less than a long stdio list at spawn. */
const FD_RESERVE_MIN = 512;

/**
 * The descriptor an upgrade worker is started with so that its descriptor table is already as large as the old
 * worker's (0: none).
 *
 * A new worker receives every connection's descriptor, and Linux grows a process's descriptor table by doubling it;
 * in a process with threads (Node always has some), each growth waits for an RCU grace period. Measured: stalls of
 * 5-16 ms at 256, 512, ..., 8,192 open descriptors, ~50 ms in all in a 10,000-connection handoff. A descriptor
 * placed at a high number at spawn (the kernel sizes the table at exec to the highest open one) makes those
 * growths happen before the process even starts, for ~10-20 ms more at spawn for a 16,384-slot table (Node walks
 * the stdio list), hence sized from the old worker's table (`FDSize` in /proc) rather than always the maximum. The
 * number stays below the soft RLIMIT_NOFILE, which the child inherits: a descriptor at or over it would make the
 * spawn fail.
 */
function reservedFd(oldPid: number | undefined): number {
  if (!oldPid) return 0;
  try {
    const size = Number(/^FDSize:\s*(\d+)/m.exec(readFileSync(`/proc/${oldPid}/status`, 'utf8'))?.[1] ?? 0);
    if (size < FD_RESERVE_MIN) return 0;
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    const soft = m ? (m[1] === 'unlimited' ? Infinity : Number(m[1])) : 0;
    // size - 2: the kernel rounds the table up to the power of two above the descriptor plus one.
    const fd = Math.min(soft - 1, Math.min(size, FD_RESERVE_MAX) - 2);
    return fd >= 64 ? fd : 0;
  } catch {
    // Not Linux, no /proc, or the old worker is gone: no reservation.
    return 0;
  }
}

/**
 * Fork a worker with an IPC channel that carries Buffers and socket handles; with `lane`, also a socketpair on fd 4
 * for the handle lane of an upgrade (handle-lane.ts), whose other end is `child.stdio[4]`, and a copy of this
 * process's stderr at a descriptor number as high as `oldPid`'s table, which the worker closes at start (reservedFd).
 */
export function forkWorker(envFile: string | undefined, extraEnv: Record<string, string> = {}, lane = false, oldPid?: number): ChildProcess {
  // The env file is read at every fork, so an upgrade picks up a changed configuration (what systemd's
  // EnvironmentFile cannot do without a restart).
  const fileEnv = envFile ? (parseEnv(readFileSync(envFile, 'utf8')) as Record<string, string>) : {};
  const stdio: Array<'ignore' | 'inherit' | 'ipc' | 'pipe' | number> = ['ignore', 'inherit', 'inherit', 'ipc'];
  const env = withMallocEnv({ ...process.env, ...fileEnv, ...extraEnv });
  delete env[FD_RESERVE_ENV];
  if (lane) {
    stdio.push('pipe');
    const fd = reservedFd(oldPid);
    if (fd > stdio.length) {
      // Slots 5..fd-1 stay closed ('ignore'); slot fd gets a copy of fd 2, which 'inherit' above already requires.
      for (let i = stdio.length; i < fd; i++) stdio.push('ignore');
      stdio.push(2);
      env[FD_RESERVE_ENV] = String(fd);
    }
  }
  // A process group of its own: a terminal's Ctrl-C (SIGINT to the foreground group) reaches only the supervisor,
  // which stops the worker gracefully over IPC. The worker ignores such signals anyway (worker-signals.ts: systemd
  // signals a whole cgroup, whatever the groups) and exits when the IPC channel closes, so it is never orphaned.
  return fork(WORKER_MAIN, [], { serialization: 'advanced', stdio, env, execArgv: process.execArgv, detached: true });
}

export class WorkerProcess {
  readonly child: ChildProcess;
  /** Resolves with the exit code (or 128 + signal number style: null code, signal name) once the process is gone. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #nextId = 0;
  #replies = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #alive = true;
  /** Why the supervisor killed it, if it did for a reason (the watchdog): pending replies are rejected with it. */
  #killedFor: HotlineError | undefined;

  constructor(child: ChildProcess) {
    this.child = child;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#alive = false;
        const why = this.#killedFor ?? new HotlineError('HOTLINE_E_WORKER_EXIT', `worker ${child.pid} exited`);
        for (const r of this.#replies.values()) r.reject(why);
        this.#replies.clear();
        resolve({ code, signal });
      });
    });
    child.on('message', (msg: FromWorker) => {
      if (msg.t !== 'res') return;
      const r = this.#replies.get(msg.id);
      if (!r) return;
      this.#replies.delete(msg.id);
      if (msg.ok) r.resolve(msg.result);
      else r.reject(fromWire(msg.error));
    });
    // A send to a worker that just died fails asynchronously; its exit is handled by `exited`.
    child.on('error', () => undefined);
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  get alive(): boolean {
    return this.#alive;
  }

  send(msg: ToWorker, handle?: object, done?: () => void): void {
    if (!this.#alive || !this.child.connected) {
      done?.();
      return;
    }
    try {
      this.child.send(msg, handle as never, {}, () => done?.());
    } catch {
      done?.();
    }
  }

  /** Forward an admin command and await the worker's answer. `trigger: 'signal'` records a SIGHUP as such in history. */
  request(cmd: 'reload' | 'rollback' | 'status' | 'metrics' | 'promote', trigger?: 'signal', force?: boolean, policy?: ReloadPolicy): Promise<unknown> {
    const id = ++this.#nextId;
    return new Promise((resolve, reject) => {
      this.#replies.set(id, { resolve, reject });
      this.send({ t: 'req', id, cmd, trigger, ...(force && { force }), ...(policy !== undefined && { policy }) });
    });
  }

  /** The reason given to kill(), if any. */
  get killedFor(): HotlineError | undefined {
    return this.#killedFor;
  }

  /** `why`: the reason the supervisor kills it (HOTLINE_E_WORKER_HUNG), reported to whoever waited for it. */
  kill(signal: NodeJS.Signals = 'SIGKILL', why?: HotlineError): void {
    if (!this.#alive) return;
    this.#killedFor ??= why;
    this.child.kill(signal);
  }
}

export function fromWire(e: WireError): HotlineError {
  return new HotlineError(e.code, e.message);
}
