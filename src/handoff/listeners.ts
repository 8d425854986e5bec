/**
 * The listening sockets the supervisor owns. They are bound here but never listened on or accepted from in this
 * process: each worker calls listen() on its own copy (a handle passed over IPC), the way Node's cluster module
 * shares a handle. While no worker listens (an upgrade between the old worker closing and the new one opening),
 * connects wait in the kernel backlog instead of being refused (DESIGN.md §6: 0 refused out of 16,000).
 */
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import { getSystemErrorName } from 'node:util';
import { HotlineError } from '../errors.js';
import { asTcpHandle, createServerHandle } from '../internals/node-internals.js';

/** A bound socket handle (libuv TCPWrap); opaque outside this file. */
export interface BoundHandle {
  close(): void;
}

/** Where a listener is bound: what the supervisor tells each worker, which checks it before it listens. */
export interface BoundAddress {
  host: string;
  port: number;
}

/** A listener the supervisor bound: its handle and its real address. */
export interface BoundListener extends BoundAddress {
  handle: BoundHandle;
}

/**
 * Bind `host:port` and return the handle and the real port (when `port` is 0). Throws HOTLINE_E_LISTEN.
 *
 * libuv defers a bind's EADDRINUSE to listen() (uv_tcp_bind keeps it as the handle's `delayed_error`), so the handle
 * comes back as if bound. It is not: a worker's listen() on it would make Linux bind it to 0.0.0.0 and a random
 * port (issue 10). getsockname() reports the deferred error, and the address it returns must be the one asked for.
 */
export async function bindListener(host: string, port: number): Promise<BoundListener> {
  const fail = (why: string) => new HotlineError('HOTLINE_E_LISTEN', `cannot listen on ${host}:${port}: ${why}`);
  // libuv binds addresses, not names.
  let address: string;
  try {
    address = net.isIP(host) ? host : (await lookup(host)).address;
  } catch (err) {
    throw fail((err as Error).message);
  }
  const handle = createServerHandle(address, port, net.isIPv6(address) ? 6 : 4);
  if (typeof handle === 'number') throw fail(errorName(handle));
  const out: { address?: string; port?: number } = {};
  const rc = handle.getsockname(out);
  const bound = rc === 0 ? checkBound({ host: address, port }, { host: out.address ?? '', port: out.port ?? 0 }) : errorName(rc);
  if (bound !== undefined) {
    handle.close();
    throw fail(bound);
  }
  return { handle, host: out.address!, port: out.port! };
}

/**
 * Why `actual` is not where `wanted` asked to be (undefined: it is). Port 0 in `wanted` accepts any real port; port 0
 * in `actual` is a socket bound to nothing.
 */
function checkBound(wanted: BoundAddress, actual: BoundAddress): string | undefined {
  if (actual.port !== 0 && (wanted.port === 0 || actual.port === wanted.port) && canonical(actual.host) === canonical(wanted.host)) return undefined;
  return `the socket is bound to ${actual.host || 'nothing'}:${actual.port}, not ${wanted.host}:${wanted.port}`;
}

/**
 * Check a listener handle a worker was passed before it listens on it: present, a bound TCP socket, and bound where
 * the supervisor said (`bound`; absent from an older supervisor: then bound at all). Returns why not, or undefined.
 * listen() on a handle bound to nothing would serve on 0.0.0.0 and a random port; on no handle, wherever the
 * worker's own options say.
 */
export function checkListenerHandle(handle: unknown, bound: BoundAddress | undefined): string | undefined {
  const h = asTcpHandle(handle);
  if (!h) return 'no bound socket was passed for it';
  const out: { address?: string; port?: number } = {};
  const rc = h.getsockname(out);
  if (rc !== 0) return errorName(rc);
  const actual = { host: out.address ?? '', port: out.port ?? 0 };
  return checkBound(bound ?? { host: actual.host, port: 0 }, actual);
}

/** One spelling per address (`::0` and `::` are one), so addresses compare as strings. */
function canonical(address: string): string {
  const family = net.isIPv6(address) ? 'ipv6' : net.isIPv4(address) ? 'ipv4' : undefined;
  return family ? new net.SocketAddress({ address, family }).address : address;
}

function errorName(rc: number): string {
  try {
    return getSystemErrorName(rc);
  } catch {
    return `error ${rc}`;
  }
}
