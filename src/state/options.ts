/**
 * The `state` option of a host: where checkpoints of the plugin's global state go, and how often (docs/api.md).
 */
import { HotlineError } from '../errors.js';

/**
 * Where and how often the plugin's global state is checkpointed (host option `state`; docs/reliability.md).
 *
 * @example
 * import { createHost } from 'hotline';
 * const host = await createHost({ plugin: './plugin.ts', state: { dir: '.hotline/state', interval: 1_000 } });
 * // kill -9, start again on the folder: migrate(prev) gets the last checkpoint, with prev.restoredAt set.
 */
export interface StateOptions {
  /** The folder of the checkpoint (created 0700 if missing). One host process at a time per folder. */
  dir: string;
  /**
   * Checkpoint this often, in ms, when the state changed since the last one (besides every swap and the shutdown).
   * 0: only at swaps and shutdown. Default 5 000. What changed after the last checkpoint is lost in a crash.
   */
  interval?: number;
  /** Largest serialised state written or read, in bytes; a bigger one is HOTLINE_E_STATE_TOO_LARGE. Default 16 MiB. */
  maxBytes?: number;
}

export interface ResolvedStateOptions {
  dir: string;
  interval: number;
  maxBytes: number;
}

export const DEFAULT_STATE_INTERVAL = 5_000;
export const DEFAULT_STATE_MAX_BYTES = 16 * 1024 * 1024;

function checked(name: string, value: number | undefined, fallback: number, zeroOff: boolean): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (value === 0 && !zeroOff)) {
    throw new HotlineError('HOTLINE_E_CONFIG', `${name} must be a positive number${zeroOff ? ' or 0' : ''}, got ${String(value)}`);
  }
  return value;
}

/** A folder path is short for `{ dir }`; absent or false: no checkpoints. */
export function resolveStateOptions(o: string | StateOptions | false | undefined): ResolvedStateOptions | false {
  if (o === undefined || o === false) return false;
  const s = typeof o === 'string' ? { dir: o } : o;
  if (typeof s !== 'object' || s === null || typeof s.dir !== 'string' || s.dir.length === 0) {
    throw new HotlineError('HOTLINE_E_CONFIG', 'state must be a folder path or { dir: "path/to/folder" }');
  }
  return {
    dir: s.dir,
    interval: checked('state.interval', s.interval, DEFAULT_STATE_INTERVAL, true),
    maxBytes: Math.floor(checked('state.maxBytes', s.maxBytes, DEFAULT_STATE_MAX_BYTES, false)),
  };
}
