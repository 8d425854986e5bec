/**
 * The envelope of a room message between nodes (src/cluster/room-envelope.ts): what is written is read back, and
 * whatever else arrives (cut at any byte, random bytes, over the bound) is refused by reason, never thrown.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { decodeEnvelope, directSubject, encodeEnvelope, isProblem, originOf, roomSubject } from '../../src/cluster/room-envelope.js';

const ORIGIN = originOf('node a.1', '0123456789ab');

test('text, binary and direct envelopes read back as written', () => {
  assert.equal(ORIGIN, 'node_a.1~0123456789ab');
  const text = decodeEnvelope(encodeEnvelope(ORIGIN, 3, 42, 'héllo ✓'), 1024);
  assert.deepEqual(text, { origin: ORIGIN, stream: 3, seq: 42, data: 'héllo ✓' });
  const bin = decodeEnvelope(encodeEnvelope(ORIGIN, 2 ** 32 - 1, 2 ** 53 - 1, new Uint8Array([0, 1, 255])), 1024);
  assert.ok(!isProblem(bin));
  assert.deepEqual([...(bin.data as Uint8Array)], [0, 1, 255]);
  assert.equal(typeof bin.data, 'object', 'binary stays binary');
  assert.deepEqual([bin.stream, bin.seq], [2 ** 32 - 1, 2 ** 53 - 1]);
  const direct = decodeEnvelope(encodeEnvelope(ORIGIN, 1, 1, '', 'abcdefghij-z'), 1024);
  assert.deepEqual(direct, { origin: ORIGIN, stream: 1, seq: 1, target: 'abcdefghij-z', data: '' });
});

test('an envelope cut at any byte, or random bytes, is refused with a reason and never throws', () => {
  for (const full of [encodeEnvelope(ORIGIN, 1, 7, 'payload'), encodeEnvelope(ORIGIN, 1, 7, 'p', 'abc-1')]) {
    const payloadStart = full.length - (full.includes(Buffer.from('payload')) ? 7 : 1);
    for (let cut = 0; cut < payloadStart; cut++) {
      const r = decodeEnvelope(full.subarray(0, cut), 1024);
      assert.ok(isProblem(r) && r.reason === 'malformed', `cut at ${cut}: refused`);
    }
  }
  let refused = 0;
  for (let i = 0; i < 2_000; i++) {
    const r = decodeEnvelope(randomBytes(1 + (i % 80)), 1024);
    if (isProblem(r)) refused++;
  }
  assert.equal(refused, 2_000, 'random bytes never pass (the first byte and the version alone make that likely)');
});

test('over the payload bound: too-large, before anything is read', () => {
  const r = decodeEnvelope(encodeEnvelope(ORIGIN, 1, 1, 'x'.repeat(2_000)), 1_000);
  assert.ok(isProblem(r));
  assert.equal(r.reason, 'too-large');
  assert.ok(!isProblem(decodeEnvelope(encodeEnvelope(ORIGIN, 1, 1, 'x'.repeat(1_000)), 1_000)), 'at the bound: taken');
});

test('room subjects are one safe token per name, distinct for distinct names', () => {
  const names = ['lobby', 'a.b', 'a*b', 'a>b', 'white space', 'ünï', '\u{1F600}', 'x'.repeat(255)];
  const subjects = names.map((n) => roomSubject('hl.c', n));
  for (const s of subjects) assert.match(s, /^hl\.c\.room\.[A-Za-z0-9_-]+$/);
  assert.equal(new Set(subjects).size, names.length);
  assert.equal(directSubject('hl.c'), 'hl.c.direct');
});
