/**
 * The wire between the host thread and a worker-mode version (issue 11), on a private MessageChannel (plugin code in
 * the worker can reach `parentPort`, never this port, so it cannot forge actions).
 *
 * The message path is batched both ways, one postMessage per event-loop turn: measured on echo (bench/p2w), one
 * postMessage per message cost about +50 % CPU per message (DESIGN.md §8). Events and actions are flat arrays of
 * fixed stride, which the structured clone copies fastest (no object per event). Calls (init, check, migrate,
 * export, dispose, stop) are objects, answered by id.
 *
 * A shared Int32Array (SAB) carries two words the host reads while the worker may be blocked:
 * - RUNNING: the seq of the event whose handler runs synchronously now (0: none), so a busy loop names its message;
 * - HEARTBEAT: bumped by an interval in the worker; frozen means the worker's event loop is blocked.
 *
 * An async handler that does not settle is judged by the worker itself, on its own clock (AC_HUNG): judged on the
 * host, the age of an event includes the time its reply waits in the host's own queue, and a host thread busy for a
 * second (a burst of 1,000 handshakes, measured in bench H1) read as a hang of a worker that had answered long ago.
 */

import { ERROR_CODES, type ErrorCode, HotlineError } from '../errors.js';

/** Host → worker events, stride EVENT_STRIDE: [op, seq, connId, a, b]. */
export const EV_OPEN = 1;
export const EV_MESSAGE = 2;
export const EV_CLOSE = 3;
/** A connection that arrives opened (a restored session), no handler: a: [transport, remoteAddress], b: its state. */
export const EV_ATTACH = 4;
export const EVENT_STRIDE = 5;

/** Worker → host actions, stride ACTION_STRIDE: [op, a, b]. */
/** a: connId, b: data */
export const AC_SEND = 1;
/** a: connId, b: [code, reason] */
export const AC_CLOSE = 2;
/** a: seq */
export const AC_DONE = 3;
/** a: seq, b: WireError */
export const AC_FAIL = 4;
/** a: connId, b: the new conn.state (an assignment in the worker) */
export const AC_STATE = 5;
/** a: data, b: true to reach every live version's connections (a broadcast without a filter: fanned out by the host) */
export const AC_BROADCAST = 6;
/** a: WireError (a tracked timer, a microtask, a forbidden call: counted against the version) */
export const AC_ERROR = 7;
/** a: pino level number, b: the log line (JSON) */
export const AC_LOG = 8;
/** a: seqs of async handlers running past hangTimeout, by the worker's own clock (see version-worker-main.ts) */
export const AC_HUNG = 9;
export const ACTION_STRIDE = 3;

/** SAB word indexes. */
export const SAB_RUNNING = 0;
export const SAB_HEARTBEAT = 1;
export const SAB_WORDS = 2;

/** An error as it crosses: the stack is already mapped to the TypeScript sources in the worker. */
export interface WireError {
  code?: string;
  message: string;
  stack?: string;
}

/** issue 12: `adopt` takes connections moving in from another live version (a MigrateArg), `forget` drops mirrors (ids). */
export type CallOp = 'init' | 'check' | 'migrate' | 'adopt' | 'forget' | 'export' | 'dispose' | 'stop';

/** Host → worker call. */
export interface CallMessage {
  t: 'call';
  id: number;
  op: CallOp;
  arg?: unknown;
}

/** `migrate`'s and `adopt`'s argument: the previous version and the opened connections with their states. */
export interface MigrateArg {
  from: { version: string; state: unknown };
  /** [id, transport, remoteAddress, state] */
  conns: Array<[string, string, string, unknown]>;
}

/** Worker → host. */
export type WorkerReply =
  | { t: 'ready'; name: string; version: string }
  | { t: 'load-error'; error: WireError }
  | { t: 'result'; id: number; ok: true; value?: unknown }
  | { t: 'result'; id: number; ok: false; error: WireError };

/** What the worker is started with (workerData). */
export interface WorkerBoot {
  code: string;
  map: string;
  entry: string;
  hash: string;
  label: string;
  seq: number;
  sab: SharedArrayBuffer;
  heartbeatMs: number;
  hangTimeout: number;
  logLevel: string;
}

export function wireError(err: unknown): WireError {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { message: err.message, ...(typeof code === 'string' && { code }), ...(typeof err.stack === 'string' && { stack: err.stack }) };
  }
  return { message: String(err) };
}

/** The host-side error for a WireError: a HotlineError when its code is one of the catalogue. */
export function fromWire(e: WireError): Error {
  const known = e.code !== undefined && Object.hasOwn(ERROR_CODES, e.code);
  const err = known ? new HotlineError(e.code as ErrorCode, e.message) : new Error(e.message);
  if (e.stack) err.stack = e.stack;
  return err;
}

/** Checks the worker's replies before the host acts on them (every byte from IPC is validated). */
export function isWorkerReply(m: unknown): m is WorkerReply {
  if (typeof m !== 'object' || m === null) return false;
  const r = m as Record<string, unknown>;
  switch (r.t) {
    case 'ready':
      return typeof r.name === 'string' && typeof r.version === 'string';
    case 'load-error':
      return isWireError(r.error);
    case 'result':
      return Number.isSafeInteger(r.id) && (r.ok === true || (r.ok === false && isWireError(r.error)));
    default:
      return false;
  }
}

export function isWireError(e: unknown): e is WireError {
  return typeof e === 'object' && e !== null && typeof (e as WireError).message === 'string';
}
