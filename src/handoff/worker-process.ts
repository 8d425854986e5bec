/**
 * One worker child process as the supervisor sees it: fork, typed messages, and awaitable replies. Forking goes
 * through `deps.fork` so the supervisor's logic does not depend on how a process is started.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseEnv } from 'node:util';
import { HotlineError } from '../errors.js';
import type { FromWorker, ToWorker, WireError } from './protocol.js';

const here = fileURLToPath(import.meta.url);
/** worker-main.js under dist/, worker-main.ts when run from sources through tsx (tests). */
const WORKER_MAIN = path.join(path.dirname(here), 'worker-main' + path.extname(here));

/**
 * Fork a worker with an IPC channel that carries Buffers and socket handles; with `lane`, also a socketpair on fd 4
 * for the handle lane of an upgrade (handle-lane.ts), whose other end is `child.stdio[4]`.
 */
export function forkWorker(envFile: string | undefined, extraEnv: Record<string, string> = {}, lane = false): ChildProcess {
  // The env file is read at every fork, so an upgrade picks up a changed configuration (what systemd's
  // EnvironmentFile cannot do without a restart).
  const fileEnv = envFile ? (parseEnv(readFileSync(envFile, 'utf8')) as Record<string, string>) : {};
  return fork(WORKER_MAIN, [], {
    serialization: 'advanced',
    stdio: lane ? ['ignore', 'inherit', 'inherit', 'ipc', 'pipe'] : ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, ...fileEnv, ...extraEnv },
    execArgv: process.execArgv,
  });
}

export class WorkerProcess {
  readonly child: ChildProcess;
  /** Resolves with the exit code (or 128 + signal number style: null code, signal name) once the process is gone. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #nextId = 0;
  #replies = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #alive = true;

  constructor(child: ChildProcess) {
    this.child = child;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#alive = false;
        for (const r of this.#replies.values()) r.reject(new HotlineError('HOTLINE_E_WORKER_EXIT', `worker ${child.pid} exited`));
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
  request(cmd: 'reload' | 'rollback' | 'status', trigger?: 'signal'): Promise<unknown> {
    const id = ++this.#nextId;
    return new Promise((resolve, reject) => {
      this.#replies.set(id, { resolve, reject });
      this.send({ t: 'req', id, cmd, trigger });
    });
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.#alive) this.child.kill(signal);
  }
}

export function fromWire(e: WireError): HotlineError {
  return new HotlineError(e.code, e.message);
}
