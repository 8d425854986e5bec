/** The entry point the supervisor forks: a worker process (see worker.ts). */
import { runWorker } from './worker.js';

runWorker();
