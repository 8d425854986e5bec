/**
 * The admin socket protocol: newline-delimited JSON over a Unix socket. One request per line, one response per line,
 * in order. The CLI (`hotline reload`, `status`, `rollback`) is its client.
 */
import path from 'node:path';

/** `upgrade` is answered by the supervisor of `hotline start` only (src/handoff). */
export type AdminCommand = 'reload' | 'rollback' | 'status' | 'upgrade';

export interface AdminRequest {
  id: number;
  cmd: AdminCommand;
  /** `reload` only: swap even when the build is identical to the running version (`hotline reload --force`). */
  force?: boolean;
}

/** What a handler gets beside the command (issue 10: `force` on reload). */
export interface AdminOptions {
  force: boolean;
}

export type AdminResponse =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: { code: string; message: string } };

/** The default admin socket: `.hotline/admin.sock` under the working directory. */
export function defaultAdminPath(cwd = process.cwd()): string {
  return path.join(cwd, '.hotline', 'admin.sock');
}
