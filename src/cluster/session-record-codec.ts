/**
 * A session record as bytes in the NATS bucket, and back. Every value read from the bucket is checked field by field
 * before any of it is used: the bucket is shared by every node, and anything with access to NATS can write to it
 * (an older or newer build, a bug, an attacker). A value that does not pass is refused with HOTLINE_E_SESSION_RECORD
 * and never partly applied.
 *
 * Wire shape (JSON, version 1): `{ v: 1, id, o: { n: node, e: epoch }, i: inSeq, s: outSeq, m: [[seq, text | { b:
 * base64 }], …], st?: state, c?: connId, t: touchedAt, x?: 1, g: gen, gc?: 1, p?: suspect, r?: [room, …] }`. `r`, the
 * connection's rooms, came after version 1 was in use: a record without it is in no room, and is read as before.
 */
import { HotlineError } from '../errors.js';
import { roomListProblem } from '../rooms/room-name.js';
import type { SessionRecord, StoredMessage } from '../session/store.js';
import { readJsonObject } from './json-record.js';

/** Which node wrote a record: its name and the random epoch of that process (a restart draws a new one). */
export interface RecordOwner {
  node: string;
  epoch: string;
}

export interface DecodedRecord {
  record: SessionRecord;
  owner: RecordOwner;
}

type WireMessage = [number, string | { b: string }];
interface WireRecord {
  v: 1;
  id: string;
  o: { n: string; e: string };
  i: number;
  s: number;
  m: WireMessage[];
  st?: string;
  c?: string;
  t: number;
  x?: 1;
  g: number;
  gc?: 1;
  p?: number;
  r?: string[];
}

/** Session ids are 128-bit base64url (token.ts); anything else never names a key. */
const KEY = /^[A-Za-z0-9_-]{1,64}$/;

export function isSessionKey(id: string): boolean {
  return KEY.test(id);
}

const encoder = new TextEncoder();
export function encodeRecord(r: SessionRecord, owner: RecordOwner): Uint8Array {
  const w: WireRecord = {
    v: 1,
    id: r.id,
    o: { n: owner.node, e: owner.epoch },
    i: r.inSeq,
    s: r.outSeq,
    m: r.out.map(([seq, data]) => [seq, typeof data === 'string' ? data : { b: Buffer.from(data).toString('base64') }]),
    t: r.touchedAt,
    g: r.gen ?? 0,
  };
  if (r.state !== undefined) w.st = r.state;
  if (r.connId !== undefined) w.c = r.connId;
  if (r.expired) w.x = 1;
  if (r.genConfirmed) w.gc = 1;
  if (r.suspect !== undefined) w.p = r.suspect;
  if (r.rooms !== undefined && r.rooms.length > 0) w.r = r.rooms;
  return encoder.encode(JSON.stringify(w));
}

function refuse(key: string, why: string): never {
  throw new HotlineError('HOTLINE_E_SESSION_RECORD', `session record ${key} in the NATS bucket refused: ${why}`);
}

function isSeq(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

function optional(o: Record<string, unknown>, field: string, type: 'string' | 'number'): boolean {
  return o[field] === undefined || typeof o[field] === type;
}

/**
 * The record stored under `key`, or HOTLINE_E_SESSION_RECORD: over `maxBytes`, not UTF-8 JSON, a field missing or
 * of the wrong type, sequence numbers out of order, more than `maxReplay` messages, another session's id, rooms a
 * connection could not have joined (more than 128, a name that is no room name, one listed twice).
 */
export function decodeRecord(key: string, bytes: Uint8Array, maxBytes: number, maxReplay: number): DecodedRecord {
  const o = readJsonObject(bytes, maxBytes, (why) => refuse(key, why));
  if (o.v !== 1) refuse(key, `unknown version ${JSON.stringify(o.v)}`);
  if (o.id !== key) refuse(key, 'its id is not its key');
  const owner = o.o as Record<string, unknown> | undefined;
  if (typeof owner !== 'object' || owner === null || typeof owner.n !== 'string' || typeof owner.e !== 'string') refuse(key, 'no owner');
  if (!isSeq(o.i) || !isSeq(o.s) || !isSeq(o.g)) refuse(key, 'inSeq, outSeq and gen must be non-negative integers');
  if (typeof o.t !== 'number' || !Number.isFinite(o.t)) refuse(key, 'touchedAt is not a number');
  if (!optional(o, 'st', 'string') || !optional(o, 'c', 'string')) refuse(key, 'state and connId must be strings');
  if (o.p !== undefined && !isSeq(o.p)) refuse(key, 'suspect must be a non-negative integer');
  if ((o.x !== undefined && o.x !== 1) || (o.gc !== undefined && o.gc !== 1)) refuse(key, 'flags must be 1 or absent');
  if (o.r !== undefined) {
    const problem = roomListProblem(o.r);
    if (problem) refuse(key, problem);
  }
  if (!Array.isArray(o.m)) refuse(key, 'messages must be an array');
  if (o.m.length > maxReplay) refuse(key, `${o.m.length} messages, over maxReplay ${maxReplay}`);
  const out: StoredMessage[] = [];
  let last = 0;
  for (const m of o.m as unknown[]) {
    if (!Array.isArray(m) || m.length !== 2 || !isSeq(m[0])) refuse(key, 'a message is not [seq, data]');
    const seq = m[0];
    if (seq <= last || seq > o.s) refuse(key, `message seq ${seq} out of order or beyond outSeq ${o.s}`);
    last = seq;
    const data: unknown = m[1];
    if (typeof data === 'string') out.push([seq, data]);
    else if (typeof data === 'object' && data !== null && typeof (data as { b?: unknown }).b === 'string') out.push([seq, new Uint8Array(Buffer.from((data as { b: string }).b, 'base64'))]);
    else refuse(key, `message ${seq} has no data`);
  }
  const record: SessionRecord = { id: key, inSeq: o.i, outSeq: o.s, out, state: o.st as string | undefined, touchedAt: o.t, gen: o.g, genConfirmed: o.gc === 1 };
  if (o.c !== undefined) record.connId = o.c as string;
  if (o.x === 1) record.expired = true;
  if (o.p !== undefined) record.suspect = o.p;
  if (o.r !== undefined) record.rooms = o.r as string[];
  return { record, owner: { node: owner.n, epoch: owner.e } };
}
