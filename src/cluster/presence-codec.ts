/**
 * A node's presence record as bytes in the NATS bucket, and back (issue 13). One record per node process, under the
 * key of its epoch; it lists every room the node has members in, and their connection ids. The node rewrites it at
 * every change (coalesced) and at every heartbeat, with `q` one higher each time.
 *
 * Every value read from the bucket is checked field by field before any of it is used: the bucket is shared, and
 * anything with access to NATS can write to it (another build, a bug, an attacker). A value that does not pass is
 * refused whole with HOTLINE_E_PRESENCE_RECORD, never partly applied, and never thrown past the reader.
 *
 * Wire shape (JSON, version 1): `{ v: 1, n: node, e: epoch, s: since, q: seq, h: heartbeatMs, c: connections,
 * r: [[room, [connId, …]], …], x?: 1 }`. `x: 1` says the node had more than the bounds let it publish (incomplete).
 */
import { HotlineError } from '../errors.js';
import { isConnectionId } from '../connection/conn-id.js';
import { roomNameProblem } from '../rooms/room-name.js';
import { readJsonObject } from './json-record.js';

/** What one node says about itself. */
export interface PresenceRecord {
  /** The node's name (`cluster.name`): a restart keeps it, so its new epoch replaces the old one at once. */
  node: string;
  /** 12 hex digits drawn at process start: the key of the record. */
  epoch: string;
  /** Wall-clock ms the process started: of two epochs of one name, the later one is the live process. */
  since: number;
  /** One more at each write: a reader counts a node alive only while this moves. */
  seq: number;
  /** The node's heartbeat interval, in ms (status shows it). */
  heartbeat: number;
  /** Open connections on the node (status' peer table). */
  connections: number;
  /** Room → the ids of its members on that node. */
  rooms: Map<string, string[]>;
  /** The node had more rooms or members than the bounds let it publish. */
  incomplete: boolean;
}

/** The bounds a record must keep, written or read. */
export interface PresenceBounds {
  maxRecordBytes: number;
  maxRooms: number;
  maxMembers: number;
}

/** Node names: what a hostname and a pid make, and a bit more; nothing that breaks a log line or a status table. */
const NODE = /^[A-Za-z0-9._:-]{1,128}$/;
const EPOCH = /^[0-9a-f]{12}$/;

export function isNodeName(name: unknown): name is string {
  return typeof name === 'string' && NODE.test(name);
}

export function isEpochKey(key: string): boolean {
  return EPOCH.test(key);
}

const encoder = new TextEncoder();
/**
 * The bytes of `r`, cut to the bounds: rooms past `maxRooms` and members past `maxMembers` (in total) are left out
 * and the record says so (`x: 1`), and so is whatever would take it past `maxRecordBytes`. The caller counts it.
 */
export interface OwnRecord extends Omit<PresenceRecord, 'rooms'> {
  rooms: ReadonlyMap<string, Iterable<string>>;
}

export function encodePresence(r: OwnRecord, bounds: PresenceBounds): { bytes: Uint8Array; incomplete: boolean } {
  const rooms: Array<[string, string[]]> = [];
  let members = 0;
  let incomplete = r.incomplete;
  // A rough running size, so that a node over maxRecordBytes stops adding instead of building and measuring twice.
  let size = 160 + r.node.length;
  for (const [room, ids] of r.rooms) {
    if (rooms.length >= bounds.maxRooms || members >= bounds.maxMembers) {
      incomplete = true;
      break;
    }
    const room_ = Buffer.byteLength(room) * 2 + 8;
    if (size + room_ > bounds.maxRecordBytes) {
      incomplete = true;
      break;
    }
    size += room_;
    const take: string[] = [];
    for (const id of ids) {
      if (members >= bounds.maxMembers || size + id.length + 3 > bounds.maxRecordBytes) {
        incomplete = true;
        break;
      }
      take.push(id);
      members++;
      size += id.length + 3;
    }
    if (take.length > 0) rooms.push([room, take]);
  }
  const w: Record<string, unknown> = { v: 1, n: r.node, e: r.epoch, s: r.since, q: r.seq, h: r.heartbeat, c: r.connections, r: rooms };
  if (incomplete) w.x = 1;
  return { bytes: encoder.encode(JSON.stringify(w)), incomplete };
}

function refuse(key: string, why: string): never {
  throw new HotlineError('HOTLINE_E_PRESENCE_RECORD', `presence record ${key.slice(0, 64)} in the NATS bucket refused: ${why}`);
}

function isCount(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/**
 * The record stored under `key`, or HOTLINE_E_PRESENCE_RECORD: over `maxRecordBytes`, not UTF-8 JSON, a field missing
 * or of the wrong type, a key that is not its epoch, a room name or connection id a join could not have made, a room
 * twice, a member twice in one room, more rooms or members than the bounds.
 */
export function decodePresence(key: string, bytes: Uint8Array, bounds: PresenceBounds): PresenceRecord {
  if (bytes.byteLength <= bounds.maxRecordBytes && !isEpochKey(key)) refuse(key, 'its key is not an epoch (12 hex digits)');
  const o = readJsonObject(bytes, bounds.maxRecordBytes, (why) => refuse(key, why));
  if (o.v !== 1) refuse(key, `unknown version ${JSON.stringify(o.v)?.slice(0, 32)}`);
  if (o.e !== key) refuse(key, 'its epoch is not its key');
  if (!isNodeName(o.n)) refuse(key, 'its node name is missing or not [A-Za-z0-9._:-]{1,128}');
  if (typeof o.s !== 'number' || !Number.isFinite(o.s) || o.s < 0) refuse(key, 'since is not a time');
  if (!isCount(o.q) || !isCount(o.c)) refuse(key, 'seq and connections must be non-negative integers');
  if (!isCount(o.h) || o.h === 0) refuse(key, 'heartbeat must be a positive integer');
  if (o.x !== undefined && o.x !== 1) refuse(key, 'the incomplete flag must be 1 or absent');
  if (!Array.isArray(o.r)) refuse(key, 'rooms must be an array');
  if (o.r.length > bounds.maxRooms) refuse(key, `${o.r.length} rooms, over the ${bounds.maxRooms} allowed`);
  const rooms = new Map<string, string[]>();
  let members = 0;
  for (const entry of o.r as unknown[]) {
    if (!Array.isArray(entry) || entry.length !== 2 || !Array.isArray(entry[1])) refuse(key, 'a room is not [name, [ids]]');
    const [room, ids] = entry as [unknown, unknown[]];
    const problem = roomNameProblem(room);
    if (problem) refuse(key, problem);
    if (rooms.has(room as string)) refuse(key, 'a room is listed twice');
    members += ids.length;
    if (members > bounds.maxMembers) refuse(key, `over the ${bounds.maxMembers} members allowed`);
    const seen = new Set<string>();
    for (const id of ids) {
      if (!isConnectionId(id)) refuse(key, 'a member is not a connection id');
      if (seen.has(id)) refuse(key, 'a member is listed twice in one room');
      seen.add(id);
    }
    if (seen.size === 0) refuse(key, 'a room has no member');
    rooms.set(room as string, [...seen]);
  }
  return { node: o.n, epoch: key, since: o.s, seq: o.q, heartbeat: o.h, connections: o.c, rooms, incomplete: o.x === 1 };
}
