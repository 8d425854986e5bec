/**
 * The thread of a worker-mode version: how it is started (version-worker-main.ts, from dist/ or from sources under
 * tsx), and the little of node's Worker a WorkerVersion uses, so tests can hand it a fake (spawn is a dep).
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type MessagePort, Worker } from 'node:worker_threads';
import type { WorkerBoot } from './worker-protocol.js';

/**
 * The code a version's thread is started with. Computed at the first start, not at import: a plugin inside this
 * repository that imports `hotline` gets the sources bundled through tsconfig's paths (CJS, no import.meta.url).
 */
let workerBoot: string | undefined;

function bootCode(): string {
  if (workerBoot !== undefined) return workerBoot;
  const here = fileURLToPath(import.meta.url);
  // version-worker-main.js under dist/, .ts when run from sources through tsx (tests).
  const main = JSON.stringify(pathToFileURL(path.join(path.dirname(here), 'version-worker-main' + path.extname(here))).href);
  // From sources (tests, benches under tsx), the worker registers tsx itself: on Node 20 the --import hooks of
  // execArgv do not apply to a worker's entry (ERR_UNKNOWN_FILE_EXTENSION for the .ts). Built (dist/), a plain import().
  workerBoot = path.extname(here) === '.ts' ? `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${main}); });` : `import(${main});`;
  return workerBoot;
}

/** Node's `resourceLimits` of a version's thread, in MB (the host option `workerLimits`). */
export interface ResourceLimits {
  maxOldGenerationSizeMb: number;
  maxYoungGenerationSizeMb?: number;
  stackSizeMb?: number;
}

/** What a WorkerVersion needs of its thread: node's Worker, or a fake in tests (test/runtime/worker-version.test.ts). */
export interface WorkerLike {
  on(event: 'error', listener: (err: Error) => void): unknown;
  on(event: 'exit', listener: (code: number) => void): unknown;
  terminate(): Promise<number>;
}

/** Starts the thread of one version: `port` is the worker's end of the private channel, in `transferList`. */
export type SpawnWorker = (init: { workerData: { boot: WorkerBoot; port: MessagePort }; transferList: MessagePort[]; resourceLimits: ResourceLimits }) => WorkerLike;

export const spawnThread: SpawnWorker = (init) => new Worker(bootCode(), { eval: true, ...init });
