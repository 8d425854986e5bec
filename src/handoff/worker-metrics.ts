/**
 * The supervisor's reads of a worker's metric families over IPC (issue 14): at each scrape, and once more from an
 * upgrade's old worker just before it leaves, so the running totals (src/ops/metric-totals.ts) lose none of its
 * counts. Every read is bounded by METRICS_TIMEOUT_MS: a scrape is then answered without the worker.
 */
import type { SupervisorOps } from '../ops/supervisor-ops.js';
import type { Clock } from './clock.js';
import type { FromWorker } from './protocol.js';
import type { WorkerProcess } from './worker-process.js';

export const METRICS_TIMEOUT_MS = 2_000;

/** `w`'s families, or undefined if it is gone or does not answer in time. */
export function workerFamilies(w: WorkerProcess | undefined, clock: Clock): Promise<{ pid: number; families: unknown } | undefined> {
  if (!w?.alive) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const timer = clock.setTimeout(() => resolve(undefined), METRICS_TIMEOUT_MS);
    w.request('metrics').then(
      (families) => {
        clock.clearTimeout(timer);
        resolve({ pid: w.pid, families });
      },
      () => {
        clock.clearTimeout(timer);
        resolve(undefined);
      },
    );
  });
}

/** The last read of an upgrade's old worker: `done` once read or given up; `stop()` when the upgrade ends. */
export interface FinalMetrics {
  done: Promise<void>;
  stop(): void;
}

export const NO_FINAL_METRICS: FinalMetrics = { done: Promise.resolve(), stop: () => undefined };

/**
 * Read `old`'s families once it has exported everything (it dispatches nothing more). Asked on its `exported`
 * message: this listener is added before the upgrade's own, so the request is on the channel ahead of `release`.
 */
export function finalMetrics(old: WorkerProcess, ops: SupervisorOps, clock: Clock): FinalMetrics {
  let settle!: () => void;
  const done = new Promise<void>((resolve) => (settle = resolve));
  let asked = false;
  const onMessage = (msg: FromWorker) => {
    if (msg?.t !== 'exported') return;
    asked = true;
    old.child.off('message', onMessage);
    void workerFamilies(old, clock).then((w) => {
      if (w) ops.workerSnapshot(w.pid, w.families);
      settle();
    });
  };
  old.child.on('message', onMessage);
  return {
    done,
    stop: () => {
      old.child.off('message', onMessage);
      // Never exported (aborted before): nothing to wait for.
      if (!asked) settle();
    },
  };
}
