/**
 * issue 15: the new worker's side of an upgrade for outbound links, the counterpart of link-export.ts. A link
 * arrives checked (link-transfer.ts, through the lane's codec); its socket, if it moved, is wrapped paused, and the
 * link table (src/links/link-table.ts, deferred since this worker started) adopts it by name: the plugin's
 * `ctx.link(name, options)` with the same options gets it live. Nothing is read from or written to it before commit.
 */
import net from 'node:net';
import { HotlineError } from '../errors.js';
import type { LinkTable } from '../links/link-table.js';
import { carriedCounters, carriedEvents } from './link-transfer.js';
import type { LinkTransfer } from './protocol.js';

/** Adopt one link. Throws HOTLINE_E_LINK_ADOPT (the upgrade aborts); a socket it was given is closed then. */
export function adoptLink(table: LinkTable, msg: LinkTransfer, handle: unknown): void {
  if (msg.wire && !handle) throw new HotlineError('HOTLINE_E_LINK_ADOPT', `link "${msg.name}" arrived without its socket`);
  if (!msg.wire && handle) {
    closeHandle(handle);
    throw new HotlineError('HOTLINE_E_LINK_ADOPT', `link "${msg.name}" arrived with a socket it did not announce`);
  }
  // pauseOnCreate: nothing may be read before commit (connection-adopt.ts says why).
  const socket = msg.wire ? new net.Socket({ handle, readable: true, writable: true, pauseOnCreate: true } as net.SocketConstructorOpts) : undefined;
  try {
    table.adopt({
      name: msg.name,
      key: msg.key,
      snapshot: {
        state: msg.state,
        version: msg.version,
        counters: carriedCounters(msg.counters),
        attempt: msg.attempt,
        everOpened: msg.everOpened,
        open: msg.open,
        sends: msg.sends,
        events: carriedEvents(msg.events),
      },
      ...(socket && msg.wire && { wire: { kind: msg.wire, socket, head: Buffer.from(msg.head.buffer, msg.head.byteOffset, msg.head.byteLength) } }),
      ...(msg.reason !== undefined && { reason: msg.reason }),
    });
  } catch (err) {
    // Our copy of the descriptor only: the old worker holds the connection and goes on serving it.
    socket?.destroy();
    throw err;
  }
}

function closeHandle(handle: unknown): void {
  const h = handle as { close?: () => void };
  if (typeof h.close === 'function') h.close();
}
