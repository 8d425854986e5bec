/**
 * The admin socket protocol: newline-delimited JSON over a Unix socket. One request per line, one response per line,
 * in order. The CLI (`hotline reload`, `status`, `rollback`) is its client.
 */
import path from 'node:path';
import { HotlineError, isHotlineError } from '../errors.js';
import { parsePolicy, type ReloadPolicy } from '../swap/reload-policy.js';

/** `upgrade` is answered by the supervisor of `hotline start` only (src/handoff). */
export type AdminCommand = 'reload' | 'rollback' | 'status' | 'upgrade' | 'promote';

export interface AdminRequest {
  id: number;
  cmd: AdminCommand;
  /** `reload` only: swap even when the build is identical to the running version (`hotline reload --force`). */
  force?: boolean;
  /** `reload` only (issue 12): `'pin'`, `{ pin: true, maxAge }` or `{ canary: share, … }`, checked by parsePolicy. */
  policy?: ReloadPolicy;
}

/** What a handler gets beside the command (issue 10: `force` on reload; issue 12: `policy`). */
export interface AdminOptions {
  force: boolean;
  policy?: ReloadPolicy;
}

/** Every command a request may name. */
export const ADMIN_COMMANDS: ReadonlySet<string> = new Set<AdminCommand>(['reload', 'rollback', 'status', 'upgrade', 'promote']);

/** Longest request line accepted, in UTF-16 code units of the line read; a request is a few dozen bytes. */
export const MAX_ADMIN_LINE = 64 * 1024;

/** A line that is not a well-formed request: the error to reply with, and the id to reply under (0 if it had none). */
export interface AdminRequestError {
  id: number;
  error: HotlineError;
}

function refuse(id: number, message: string): AdminRequestError {
  return { id, error: new HotlineError('HOTLINE_E_ADMIN_REQUEST', message) };
}

/**
 * Parse and validate one request line. Total: a request, or the coded error to reply with; it never throws, whatever
 * the line holds (issue 9: the line `null` killed the supervisor, which read `req.cmd` of it). Every server of this
 * protocol (the host's AdminServer, and so the supervisor's) reads its lines through here and nothing else.
 *
 * The only keys a request may have are `id`, `cmd` and (for `reload`) `force`: an unknown key, `__proto__` included (JSON.parse makes it an
 * own key), is refused rather than ignored, so a typo is an error and not a silent default.
 */
export function parseAdminRequest(line: string): AdminRequest | AdminRequestError {
  if (line.length > MAX_ADMIN_LINE) return refuse(0, `the request line is longer than ${MAX_ADMIN_LINE} characters`);
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return refuse(0, 'the request is not JSON');
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return refuse(0, 'a request must be a JSON object like {"id":1,"cmd":"status"}');
  const o = v as Record<string, unknown>;
  const has = (k: string) => Object.prototype.hasOwnProperty.call(o, k);
  const rawId = has('id') ? o.id : undefined;
  const idOk = typeof rawId === 'number' && Number.isSafeInteger(rawId) && rawId >= 0;
  const id = idOk ? rawId : 0;
  if (!idOk) return refuse(0, 'the request id must be an integer >= 0');
  const extra = Object.keys(o).find((k) => k !== 'id' && k !== 'cmd' && k !== 'force' && k !== 'policy');
  if (extra !== undefined) return refuse(id, `unknown request field ${JSON.stringify(extra.slice(0, 64))}`);
  const cmd = has('cmd') ? o.cmd : undefined;
  if (typeof cmd !== 'string' || !ADMIN_COMMANDS.has(cmd)) {
    return refuse(id, `unknown command ${typeof cmd === 'string' ? JSON.stringify(cmd.slice(0, 64)) : String(typeof cmd)}; expected one of ${[...ADMIN_COMMANDS].join(', ')}`);
  }
  const force = has('force') ? o.force : undefined;
  if (force !== undefined && (typeof force !== 'boolean' || cmd !== 'reload')) return refuse(id, '`force` is a boolean, and only for reload');
  const policy = has('policy') ? o.policy : undefined;
  if (policy !== undefined) {
    if (cmd !== 'reload') return refuse(id, '`policy` is only for reload');
    try {
      // JSON holds no function: a canary's `match` is an API option only.
      parsePolicy(policy);
    } catch (err) {
      if (isHotlineError(err)) return { id, error: err };
      throw err;
    }
  }
  return { id, cmd: cmd as AdminCommand, ...(force === true && { force }), ...(policy !== undefined && { policy: policy as ReloadPolicy }) };
}

export type AdminResponse =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: { code: string; message: string } };

/** The default admin socket: `.hotline/admin.sock` under the working directory. */
export function defaultAdminPath(cwd = process.cwd()): string {
  return path.join(cwd, '.hotline', 'admin.sock');
}
