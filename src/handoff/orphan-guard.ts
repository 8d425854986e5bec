/**
 * The worker's guard against outliving its supervisor while its main thread is blocked (issue 11).
 *
 * A worker leaves when its IPC channel closes (worker.ts, `disconnect`), but that is an event of the main thread's
 * loop: a worker spinning in plugin code (`while (true) {}`) never sees it, and a `kill -9` of the supervisor left
 * such a worker running for good, holding the listening ports. Linux's PR_SET_PDEATHSIG would need a native addon,
 * so a small thread of this process (its own event loop, which plugin code cannot block) polls the parent PID and
 * SIGKILLs the process once it changes: the supervisor died and the worker was re-parented.
 *
 * Measured on the 2-core test machine: the thread costs ~30 ms to start (in parallel with the worker's own start)
 * and a few MB; a poll is one getppid() every 250 ms.
 */
import { Worker } from 'node:worker_threads';

/** How often the thread checks the parent: the bound on how long an orphaned, hung worker lives. */
export const ORPHAN_POLL_MS = 250;

// Plain CommonJS, evaluated in the thread: no import of hotline code, so it starts fast and cannot fail to resolve.
const GUARD = `
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.kill(process.pid, 'SIGKILL');
}, ${ORPHAN_POLL_MS});
`;

/** Start the guard thread. Unref'd: it never keeps the worker alive. Only for a process with a supervisor parent. */
export function startOrphanGuard(): void {
  const thread = new Worker(GUARD, { eval: true, stdout: false, stderr: false, resourceLimits: { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 1 } });
  thread.unref();
  // A thread that fails to start leaves the worker as it was before the guard: logged by nobody, never fatal.
  thread.on('error', () => undefined);
}
