/**
 * A worker process (src/handoff/worker-main.ts) forked by the test itself, playing the supervisor's side of the IPC
 * protocol by hand: for tests of what a worker does with each message, in each phase.
 */
import { type ChildProcess, fork } from 'node:child_process';
import path from 'node:path';
import type { FromWorker, ToWorker } from '../../src/handoff/protocol.js';

export interface WorkerChild {
  child: ChildProcess;
  send(msg: ToWorker, handle?: object): void;
  /**
   * The next message from the worker that `match` accepts (default: any); rejects if it exits first or after `ms`.
   * Heartbeats (the supervisor's watchdog, issue 11) and build reports (`serving`, for its last known good record) are
   * not messages of the protocol under test: never returned.
   */
  next(match?: (m: FromWorker) => boolean, ms?: number): Promise<FromWorker>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function forkWorkerMain(): WorkerChild {
  const main = path.join(import.meta.dirname, '../../src/handoff/worker-main.ts');
  const child = fork(main, [], { serialization: 'advanced', stdio: ['ignore', 'ignore', 'pipe', 'ipc'], execArgv: ['--import', 'tsx'] });
  const stderr: string[] = [];
  child.stderr!.setEncoding('utf8').on('data', (c: string) => stderr.push(c));
  const inbox: FromWorker[] = [];
  const waiters = new Set<() => void>();
  let gone = false;
  child.on('message', (m: FromWorker) => {
    if (m.t === 'beat' || m.t === 'serving') return;
    inbox.push(m);
    for (const w of [...waiters]) w();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      gone = true;
      for (const w of [...waiters]) w();
      resolve({ code, signal });
    }),
  );
  const next = (match: (m: FromWorker) => boolean = () => true, ms = 20_000) =>
    new Promise<FromWorker>((resolve, reject) => {
      const check = () => {
        const i = inbox.findIndex(match);
        if (i !== -1) {
          done();
          resolve(inbox.splice(i, 1)[0]!);
        } else if (gone) {
          done();
          reject(new Error(`the worker exited; stderr:\n${stderr.join('')}`));
        }
      };
      const done = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no such message from the worker within ${ms} ms; stderr:\n${stderr.join('')}`));
      }, ms);
      waiters.add(check);
      check();
    });
  return { child, send: (msg, handle) => child.send(msg, handle as never), next, exited };
}
