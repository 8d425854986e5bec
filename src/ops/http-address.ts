/**
 * Where the HTTP admin listens, and whether it may: `--http-admin HOST:PORT` (`--metrics` means DEFAULT_HTTP_ADMIN).
 * Loopback unless told otherwise; another address needs a token, or the listener is refused
 * (HOTLINE_E_HTTP_ADMIN_EXPOSED): reload, rollback and upgrade must never be one unauthenticated request away.
 */
import net from 'node:net';
import { HotlineError } from '../errors.js';

/** The default address: loopback, Prometheus' registered port range (9464 is the OpenTelemetry exporter's). */
export const DEFAULT_HTTP_ADMIN = '127.0.0.1:9464';

/** Shortest token accepted: a guessable token is no token. */
export const MIN_TOKEN_LENGTH = 16;
const MAX_TOKEN_LENGTH = 1024;

export interface HttpAdminAddress {
  host: string;
  port: number;
}

/** Parse `HOST:PORT` (`[::1]:PORT` for IPv6). Throws HOTLINE_E_HTTP_ADMIN naming what is wrong. */
export function parseHttpAdminAddress(text: string): HttpAdminAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(text);
  const host = m?.[1] ?? m?.[2];
  const port = m ? Number(m[3]) : NaN;
  if (!m || host === undefined || !(port >= 0 && port <= 65535)) {
    throw new HotlineError('HOTLINE_E_HTTP_ADMIN', `the HTTP admin address must be HOST:PORT like ${DEFAULT_HTTP_ADMIN} or [::1]:9464, got ${JSON.stringify(text.slice(0, 100))}`);
  }
  if (m[1] !== undefined && net.isIPv6(host) === false) throw new HotlineError('HOTLINE_E_HTTP_ADMIN', `"${host}" in brackets is not an IPv6 address`);
  return { host, port };
}

/** `HOST:PORT`, IPv6 in brackets: what parseHttpAdminAddress reads back. */
export function formatHttpAdminAddress(a: HttpAdminAddress): string {
  return `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
}

/** True for 127.0.0.0/8, ::1 and localhost: only processes of this machine can connect. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  if (net.isIPv4(host)) return host.startsWith('127.');
  return /^::ffff:127\./i.test(host);
}

/** A usable token, or a coded error: printable ASCII without spaces, MIN_TOKEN_LENGTH..1024 characters. */
export function checkToken(token: string, where: string): string {
  if (typeof token !== 'string' || token.length < MIN_TOKEN_LENGTH || token.length > MAX_TOKEN_LENGTH || !/^[\x21-\x7e]+$/.test(token)) {
    throw new HotlineError('HOTLINE_E_HTTP_ADMIN', `${where}: the admin token must be ${MIN_TOKEN_LENGTH} to ${MAX_TOKEN_LENGTH} printable ASCII characters without spaces`);
  }
  return token;
}

/** Refuse a non-loopback address without a token (HOTLINE_E_HTTP_ADMIN_EXPOSED). */
export function checkExposure(address: HttpAdminAddress, token: string | undefined): void {
  if (token === undefined && !isLoopback(address.host)) {
    throw new HotlineError(
      'HOTLINE_E_HTTP_ADMIN_EXPOSED',
      `refusing to serve the HTTP admin on ${address.host}:${address.port} without a token: set HOTLINE_ADMIN_TOKEN (or the token option), or bind to 127.0.0.1`,
    );
  }
}
