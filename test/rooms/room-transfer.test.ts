/**
 * Membership in an upgrade's transfer (src/handoff/transfer-codec.ts, tag 3): the rooms round-trip; a receiver that
 * never said it reads them gets tag 2, as before; and a transfer past the bounds a join enforces is refused with
 * HOTLINE_E_HANDOFF_FRAME, in the compact form and in v8's. Also the name rules themselves (src/rooms/room-name.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import v8 from 'node:v8';
import type { ConnTransfer } from '../../src/handoff/protocol.js';
import { LANE_HELLO, TransferCodec } from '../../src/handoff/transfer-codec.js';
import { MAX_ROOMS_PER_CONNECTION, roomNameProblem } from '../../src/rooms/room-name.js';

const conn: ConnTransfer = {
  t: 'conn',
  id: 'abcdefghij-7',
  kind: 'ws',
  framing: undefined,
  remoteAddress: '127.0.0.1',
  protocol: '',
  head: new Uint8Array(0),
  opened: true,
  state: { n: 1 },
  messages: ['queued'],
  rooms: ['lobby', 'ü-raum', 'x'.repeat(255), '房间'],
};

function codecHearing(hello: Partial<typeof LANE_HELLO>): TransferCodec {
  const codec = new TransferCodec();
  codec.heard({ ...LANE_HELLO, ...hello });
  return codec;
}

const refused = (fn: () => unknown, what: RegExp) => assert.throws(fn, (err: { code?: string; message: string }) => err.code === 'HOTLINE_E_HANDOFF_FRAME' && what.test(err.message));

test('rooms round-trip in tag 3; a receiver that does not read them gets tag 2', () => {
  const codec = codecHearing({});
  const body = codec.encode(conn, 0);
  assert.equal(body[0], 3);
  const back = codec.decode(body) as ConnTransfer;
  assert.deepEqual({ ...back, head: Buffer.from(back.head) }, { ...conn, head: Buffer.from(conn.head) });

  const older = codecHearing({ rooms: undefined });
  const old = older.encode(conn, 0);
  assert.equal(old[0], 2, 'an older receiver reads tag 2 only');
  assert.equal((older.decode(old) as ConnTransfer).rooms, undefined);
  assert.equal(codec.encode({ ...conn, rooms: [] }, 0)[0], 2, 'no rooms, no tag 3');
});

test('a transfer past the room bounds, or malformed, is refused with HOTLINE_E_HANDOFF_FRAME', () => {
  const codec = codecHearing({});
  const tooMany = Array.from({ length: MAX_ROOMS_PER_CONNECTION + 1 }, (_, i) => `r${i}`);
  refused(() => codec.decode(codec.encode({ ...conn, rooms: tooMany }, 0)), /129 rooms, over the 128/);
  refused(() => codec.decode(v8.serialize({ ...conn, rooms: tooMany })), /129 rooms/);
  refused(() => codec.decode(v8.serialize({ ...conn, rooms: ['x'.repeat(256)] })), /at most 255 bytes/);
  refused(() => codec.decode(v8.serialize({ ...conn, rooms: [''] })), /empty/);
  refused(() => codec.decode(v8.serialize({ ...conn, rooms: 'lobby' })), /must be an array/);
  refused(() => codec.decode(v8.serialize({ ...conn, rooms: [7] })), /must be a string/);
  const body = codec.encode({ ...conn, rooms: ['lobby'] }, 0);
  // Header 5, id 1 + 12, then the room count and the room's length: cut inside the name, then break its UTF-8.
  const roomAt = 5 + 1 + 12;
  assert.equal(body[roomAt], 1);
  refused(() => codec.decode(body.subarray(0, roomAt + 4)), /room 0 \(5 bytes\) runs past the end/);
  refused(() => codec.decode(body.subarray(0, roomAt + 1)), /inside the length of room 0/);
  const bad = Buffer.from(body);
  bad[roomAt + 2] = 0xff;
  refused(() => codec.decode(bad), /room 0 is not valid UTF-8/);
  const empty = Buffer.from(body);
  empty[roomAt + 1] = 0;
  refused(() => codec.decode(empty), /./);
});

test('room names: non-empty, well-formed, at most 255 bytes of UTF-8', () => {
  assert.equal(roomNameProblem('lobby'), undefined);
  assert.equal(roomNameProblem('é'.repeat(127)), undefined, '254 bytes');
  assert.match(roomNameProblem('é'.repeat(128))!, /255 bytes/);
  assert.match(roomNameProblem('\ud800')!, /lone surrogate/);
  assert.match(roomNameProblem('')!, /empty/);
  assert.match(roomNameProblem(undefined)!, /must be a string/);
});
