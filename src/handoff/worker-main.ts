/** The entry point the supervisor forks: a worker process (see worker.ts). */
// First: from here on, only the supervisor's IPC stops this process (worker-signals.ts).
import './worker-signals.js';
import { installLastResort } from '../host/last-resort.js';
import { startOrphanGuard } from './orphan-guard.js';
import { runWorker } from './worker.js';

installLastResort('worker');
// A worker blocked by plugin code must not outlive a supervisor that was killed (orphan-guard.ts).
startOrphanGuard();

runWorker();
