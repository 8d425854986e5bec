/** The entry point the supervisor forks: a worker process (see worker.ts). */
import { installLastResort } from '../host/last-resort.js';
import { runWorker } from './worker.js';

installLastResort('worker');

runWorker();
