/**
 * `--http-admin HOST:PORT`, `--metrics` (the same on 127.0.0.1:9464) and `--admin-token-file PATH` of `hotline start`
 * and `hotline dev`, and the file that tells the other commands where the listener is.
 *
 * The token: the file's content, else HOTLINE_ADMIN_TOKEN, else (loopback only) a random one made for this start. The listener's
 * URL (and a token made here) goes to `.hotline/http-admin.json` (0600) beside the admin socket, so `hotline upgrade`
 * finds the event stream, and the operator the dashboard's token, without another flag.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { HotlineError, messageOf } from '../errors.js';
import type { HttpAdminConfig } from '../ops/http-admin.js';
import { resolveHttpAdmin } from '../ops/http-admin-options.js';
import { DEFAULT_HTTP_ADMIN, type HttpAdminAddress, checkExposure, formatHttpAdminAddress, parseHttpAdminAddress } from '../ops/http-address.js';

export const TOKEN_ENV = 'HOTLINE_ADMIN_TOKEN';

/** `--http-admin`, `--metrics`, `--admin-token-file`, read from the parsed flags. */
export type HttpAdminFlags = Readonly<Record<string, string | boolean | undefined>>;

/** The listener the flags ask for, and whether its token was made here (so it is written to the info file). */
export interface HttpAdminChoice {
  config: HttpAdminConfig;
  madeToken: boolean;
}

export function httpAdminFromFlags(flags: HttpAdminFlags, env: NodeJS.ProcessEnv = process.env): HttpAdminChoice | undefined {
  const listen = flags['http-admin'];
  if (listen === undefined && flags.metrics !== true) return undefined;
  if (listen !== undefined && typeof listen !== 'string') throw new HotlineError('HOTLINE_E_HTTP_ADMIN', '--http-admin needs HOST:PORT, e.g. --http-admin 127.0.0.1:9464');
  const file = flags['admin-token-file'];
  let token: string | undefined;
  if (typeof file === 'string') {
    try {
      token = readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new HotlineError('HOTLINE_E_HTTP_ADMIN', `--admin-token-file ${file}: ${messageOf(err)}`, { cause: err });
    }
  } else token = env[TOKEN_ENV] || undefined;
  const madeToken = token === undefined;
  // A token made here is only for loopback: beyond it the operator must choose one (and so know it is exposed).
  if (madeToken) checkExposure(parseHttpAdminAddress(listen ?? DEFAULT_HTTP_ADMIN), undefined);
  token ??= randomBytes(24).toString('base64url');
  return { config: resolveHttpAdmin({ ...(listen !== undefined && { listen }), token })!, madeToken };
}

/** `.hotline/http-admin.json` beside the admin socket. */
export function httpAdminInfoPath(adminSocket: string): string {
  return path.join(path.dirname(adminSocket), 'http-admin.json');
}

export interface HttpAdminInfo {
  url: string;
  /** Present when the token was made by this start (one from the environment or a file stays there). */
  token?: string;
}

/** Write the info file (0600); returns its path. */
export function writeHttpAdminInfo(adminSocket: string, address: HttpAdminAddress, choice: HttpAdminChoice): string {
  const file = httpAdminInfoPath(adminSocket);
  const info: HttpAdminInfo = { url: `http://${formatHttpAdminAddress(address)}`, ...(choice.madeToken && { token: choice.config.token }) };
  rmSync(file, { force: true });
  writeFileSync(file, JSON.stringify(info) + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
  return file;
}

/** Read the info file, if there is one that parses; the token from the environment fills in a missing one. */
export function readHttpAdminInfo(adminSocket: string, env: NodeJS.ProcessEnv = process.env): HttpAdminInfo | undefined {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(httpAdminInfoPath(adminSocket), 'utf8'));
  } catch {
    return undefined;
  }
  if (v === null || typeof v !== 'object') return undefined;
  const { url, token } = v as Record<string, unknown>;
  if (typeof url !== 'string' || !/^http:\/\/[^/]+$/.test(url)) return undefined;
  const t = typeof token === 'string' ? token : env[TOKEN_ENV] || undefined;
  return t === undefined ? { url } : { url, token: t };
}

/** The line printed after the ready line. */
export function httpAdminLine(address: HttpAdminAddress, infoFile: string, choice: HttpAdminChoice): string {
  const token = choice.madeToken ? `token in ${infoFile}` : `token from ${TOKEN_ENV} or --admin-token-file`;
  return `hotline: http admin on http://${formatHttpAdminAddress(address)}/ (dashboard /, metrics /metrics; ${token})\n`;
}
