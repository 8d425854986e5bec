/**
 * The listening sockets the supervisor owns. They are bound here but never listened on or accepted from in this
 * process: each worker calls listen() on its own copy (a handle passed over IPC), the way Node's cluster module
 * shares a handle. While no worker listens (an upgrade between the old worker closing and the new one opening),
 * connects wait in the kernel backlog instead of being refused (DESIGN.md §6: 0 refused out of 16,000).
 */
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import { HotlineError } from '../errors.js';

/** A bound socket handle (libuv TCPWrap); opaque outside this file. */
export interface BoundHandle {
  close(): void;
}

interface TcpWrap extends BoundHandle {
  getsockname(out: { address?: string; port?: number }): number;
}

// net._createServerHandle is what cluster's shared handles use: bind without listen.
const createServerHandle = (net as unknown as {
  _createServerHandle(address: string, port: number, addressType: number, fd?: number, flags?: number): TcpWrap | number;
})._createServerHandle;

/** Bind `host:port` and return the handle and the real port (when `port` is 0). Throws HOTLINE_E_LISTEN. */
export async function bindListener(host: string, port: number): Promise<{ handle: BoundHandle; host: string; port: number }> {
  // libuv binds addresses, not names.
  const address = net.isIP(host) ? host : (await lookup(host)).address;
  const handle = createServerHandle(address, port, net.isIPv6(address) ? 6 : 4);
  if (typeof handle === 'number') {
    throw new HotlineError('HOTLINE_E_LISTEN', `cannot listen on ${host}:${port}: error ${handle}`);
  }
  const out: { address?: string; port?: number } = {};
  handle.getsockname(out);
  return { handle, host: out.address ?? host, port: out.port ?? port };
}
