/**
 * The presence lines of `hotline status` (issue 13): this node, each peer with its epoch, connection count and last
 * heartbeat, and the biggest rooms with their local and global member counts.
 */
import type { HostStatus } from '../host/host.js';

/** Room names and node names come from the network: printed as they are only when plain printable ASCII. */
function safe(text: string): string {
  return /^[\x21-\x7e]{1,64}$/.test(text) ? text : JSON.stringify(text.slice(0, 64));
}

/** Rooms shown at most; status --json has the 100 biggest. */
const SHOWN_ROOMS = 10;

export function formatPresence(p: NonNullable<HostStatus['presence']>): string[] {
  const flags = [p.superseded ? 'SUPERSEDED by a later process of this name' : '', p.incomplete ? 'INCOMPLETE (over the bounds)' : ''].filter((f) => f !== '');
  const refused = p.lastRefused ? `${p.refusedRecords} (latest ${p.lastRefused.code})` : String(p.refusedRecords);
  const lines = [
    `presence    node ${safe(p.node)} epoch ${p.epoch}: NATS ${p.state === 'up' ? 'up' : `${p.state} (local presence only, ${p.deferredWrites} writes deferred)`}, bucket ${p.bucket}, heartbeat ${p.heartbeat} ms, expiry ${p.expireAfter} ms; ${p.peers.length} peer(s), ${p.expiredPeers} expired, refused records ${refused}, events dropped ${p.events.dropped}${flags.length > 0 ? `; ${flags.join(', ')}` : ''}`,
  ];
  for (const peer of p.peers) {
    lines.push(`  peer      ${safe(peer.node)} epoch ${peer.epoch} ${peer.phase}: ${peer.connections} connections, ${peer.members} members in ${peer.rooms} rooms, last heartbeat ${peer.lastHeardMs} ms ago (seq ${peer.seq})${peer.incomplete ? ', incomplete' : ''}`);
  }
  for (const r of p.rooms.slice(0, SHOWN_ROOMS)) lines.push(`  room      ${safe(r.room)}: ${r.local} here, ${r.global} on all nodes`);
  if (p.roomCount > SHOWN_ROOMS) lines.push(`  room      … ${p.roomCount - SHOWN_ROOMS} more`);
  return lines;
}
