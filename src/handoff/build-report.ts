/**
 * A plugin build as it travels between a worker and the supervisor (issue 11, last known good): the worker reports
 * each build it starts serving (`serving`), and the supervisor hands the last known good one back to a restarted
 * worker (`WorkerConfig.build`), which then loads it instead of building whatever is on disk now.
 *
 * Both ends check it here, since neither trusts the other's bytes: the shape and sizes, and that the code hashes to
 * the hash it claims, so a build is never served under another build's name.
 */
import { createHash } from 'node:crypto';
import type { Bundle } from '../build/bundler.js';
import { HotlineError } from '../errors.js';

/** The largest bundle (code, or its source map) accepted over IPC: far above any plugin, far below a heap. */
export const MAX_BUILD_BYTES = 64 * 1024 * 1024;
/** Local files one build may list (the entry and its local imports). */
const MAX_INPUTS = 10_000;
const HASH = /^[0-9a-f]{12}$/;

/** The hash hotline gives a bundle (bundler.ts): the first 12 hex digits of the code's SHA-256. */
export function hashOf(code: string): string {
  return createHash('sha256').update(code).digest('hex').slice(0, 12);
}

function bad(why: string): HotlineError {
  return new HotlineError('HOTLINE_E_WORKER_BUILD', `build refused: ${why}`);
}

function isShortString(v: unknown, max: number): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= max;
}

/**
 * `x` as a Bundle, or HOTLINE_E_WORKER_BUILD naming what is wrong. A new object of the checked fields only.
 * `entry`: the plugin entry this process serves; a build of another entry is refused.
 */
export function checkBuild(x: unknown, entry?: string): Bundle {
  if (x === null || typeof x !== 'object' || Array.isArray(x)) throw bad('not an object');
  const o = x as Record<string, unknown>;
  const own = (k: string): unknown => (Object.hasOwn(o, k) ? o[k] : undefined);
  const hash = own('hash');
  const code = own('code');
  const map = own('map');
  const file = own('entry');
  const inputs = own('inputs');
  if (typeof hash !== 'string' || !HASH.test(hash)) throw bad('hash must be 12 hex digits');
  if (!isShortString(code, MAX_BUILD_BYTES)) throw bad(`code must be a string of 1 to ${MAX_BUILD_BYTES} characters`);
  if (typeof map !== 'string' || map.length > MAX_BUILD_BYTES) throw bad('map must be a string');
  if (!isShortString(file, 4096)) throw bad('entry must be a path');
  if (entry !== undefined && file !== entry) throw bad(`it is a build of ${file}, not of ${entry}`);
  if (!Array.isArray(inputs) || inputs.length > MAX_INPUTS || !inputs.every((p) => isShortString(p, 4096))) throw bad('inputs must be a list of paths');
  if (hashOf(code) !== hash) throw bad(`its code does not hash to ${hash}`);
  return { hash, code, map, entry: file, inputs: [...(inputs as string[])] };
}
