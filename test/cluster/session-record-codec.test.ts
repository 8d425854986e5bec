/**
 * The rooms field of a session record in the NATS bucket (issue 13): carried both ways, absent from older records
 * (read as in no room), and refused with HOTLINE_E_SESSION_RECORD, the whole record, when it is anything joins could
 * not have made.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeRecord, encodeRecord } from '../../src/cluster/session-record-codec.js';
import { isHotlineError } from '../../src/errors.js';
import type { SessionRecord } from '../../src/session/store.js';

const KEY = 'AAAAAAAAAAAAAAAAAAAAAA';
const OWNER = { node: 'n1', epoch: 'e1' };
const MAX_BYTES = 512 * 1024;

function record(rooms?: string[]): SessionRecord {
  const r: SessionRecord = { id: KEY, inSeq: 3, outSeq: 2, out: [[2, 'x']], state: '{"n":1}', touchedAt: 1000, gen: 1, genConfirmed: true };
  if (rooms) r.rooms = rooms;
  return r;
}

function wire(extra: Record<string, unknown>): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ v: 1, id: KEY, o: { n: 'x', e: 'y' }, i: 0, s: 0, m: [], t: 1, g: 0, ...extra }));
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return isHotlineError(err) ? err.code : `not coded: ${String(err)}`;
  }
  return 'decoded';
}

test('rooms are carried in join order; a record without them (an older build) is in no room; none are not written', () => {
  const rooms = ['lobby', 'zone é', '🎲', 'x'.repeat(255)];
  assert.deepEqual(decodeRecord(KEY, encodeRecord(record(rooms), OWNER), MAX_BYTES, 10).record.rooms, rooms);
  const old = decodeRecord(KEY, encodeRecord(record(), OWNER), MAX_BYTES, 10).record;
  assert.equal(old.rooms, undefined);
  assert.equal(old.state, '{"n":1}');
  const empty = encodeRecord(record([]), OWNER);
  assert.equal('r' in JSON.parse(new TextDecoder().decode(empty)), false, 'no room: no field');
  const most = Array.from({ length: 128 }, (_, i) => `room-${i}`);
  assert.deepEqual(decodeRecord(KEY, encodeRecord(record(most), OWNER), MAX_BYTES, 10).record.rooms, most, '128, the most a connection may join');
});

test('hostile rooms are refused with HOTLINE_E_SESSION_RECORD: the record is never partly used', () => {
  const bad: Array<[string, unknown]> = [
    ['a string', 'lobby'],
    ['an object', { 0: 'lobby', length: 1 }],
    ['null', null],
    ['a number in it', ['lobby', 7]],
    ['null in it', [null]],
    ['an array in it', [['lobby']]],
    ['an empty name', ['']],
    ['256 bytes', ['x'.repeat(256)]],
    ['256 bytes of UTF-8 in 128 units', ['é'.repeat(128)]],
    ['a lone surrogate', ['\ud800']],
    ['listed twice', ['lobby', 'game', 'lobby']],
    ['129 rooms', Array.from({ length: 129 }, (_, i) => `r${i}`)],
    ['a million rooms', Array.from({ length: 1_000_000 }, () => 'r')],
  ];
  for (const [what, r] of bad) assert.equal(codeOf(() => decodeRecord(KEY, wire({ r }), 64 * 1024 * 1024, 10)), 'HOTLINE_E_SESSION_RECORD', what);
  assert.equal(codeOf(() => decodeRecord(KEY, wire({ r: ['lobby'] }), MAX_BYTES, 10)), 'decoded', 'the same record with good rooms');
});
