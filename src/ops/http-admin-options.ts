/**
 * The `httpAdmin` option of createHost (and of the supervisor), resolved to an address and a token, checked before
 * anything listens.
 */
import { HotlineError } from '../errors.js';
import type { HttpAdminConfig } from './http-admin.js';
import { DEFAULT_HTTP_ADMIN, checkExposure, checkToken, parseHttpAdminAddress } from './http-address.js';

export interface HttpAdminOptions {
  /** `HOST:PORT`. Default `127.0.0.1:9464`. */
  listen?: string;
  /** Bearer token of the JSON API (16+ printable ASCII characters). Required to bind beyond loopback. */
  token?: string;
}

/** `true`: the default loopback address; a string: the address. Throws HOTLINE_E_HTTP_ADMIN or _EXPOSED. */
export function resolveHttpAdmin(option: HttpAdminOptions | string | true | undefined): HttpAdminConfig | undefined {
  if (option === undefined) return undefined;
  const o: HttpAdminOptions = option === true ? {} : typeof option === 'string' ? { listen: option } : option;
  if (o === null || typeof o !== 'object') throw new HotlineError('HOTLINE_E_HTTP_ADMIN', 'httpAdmin must be true, "HOST:PORT" or { listen, token }');
  const address = parseHttpAdminAddress(o.listen ?? DEFAULT_HTTP_ADMIN);
  const token = o.token === undefined ? undefined : checkToken(o.token, 'httpAdmin.token');
  checkExposure(address, token);
  return token === undefined ? { address } : { address, token };
}
