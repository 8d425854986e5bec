/**
 * The presence record codec and the merged view, alone (no NATS): every hostile record refused with
 * HOTLINE_E_PRESENCE_RECORD, a node over the bounds published incomplete, the union of sources, pending records of
 * dead nodes, supersede by node name, and expiry by heartbeat age on the reader's clock.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HotlineError } from '../../src/index.js';
import { decodePresence, encodePresence, type PresenceBounds, type PresenceRecord } from '../../src/cluster/presence-codec.js';
import { PresenceView, type RoomChange } from '../../src/cluster/presence-view.js';
import { resolvePresenceOptions } from '../../src/cluster/presence-options.js';

const BOUNDS: PresenceBounds = { maxRecordBytes: 64 * 1024, maxRooms: 100, maxMembers: 1000 };
const enc = (o: unknown) => new TextEncoder().encode(typeof o === 'string' ? o : JSON.stringify(o));

function record(epoch: string, node: string, rooms: Record<string, string[]>, seq = 1, since = 1000): PresenceRecord {
  return { node, epoch, since, seq, heartbeat: 100, connections: 1, rooms: new Map(Object.entries(rooms)), incomplete: false };
}

test('a record survives encode and decode', () => {
  const r = record('0123456789ab', 'node-a', { lobby: ['abc-1', 'abc-2'], 'room é': ['abc-3'] }, 7);
  const { bytes, incomplete } = encodePresence(r, BOUNDS);
  assert.equal(incomplete, false);
  assert.deepEqual(decodePresence('0123456789ab', bytes, BOUNDS), r);
});

test('hostile records are refused with HOTLINE_E_PRESENCE_RECORD, each naming why', () => {
  const good = { v: 1, n: 'x', e: '0123456789ab', s: 1, q: 1, h: 100, c: 0, r: [['lobby', ['abc-1']]] };
  const cases: Array<[string, string, Uint8Array]> = [
    ['not JSON', '0123456789ab', enc('{')],
    ['not UTF-8', '0123456789ab', new Uint8Array([0x7b, 0xff, 0x7d])],
    ['an array', '0123456789ab', enc([1])],
    ['another version', '0123456789ab', enc({ ...good, v: 2 })],
    ['a key that is no epoch', 'evil.key', enc(good)],
    ['an epoch that is not its key', '0123456789ac', enc(good)],
    ['a node name with a newline', '0123456789ab', enc({ ...good, n: 'a\nb' })],
    ['a negative seq', '0123456789ab', enc({ ...good, q: -1 })],
    ['a zero heartbeat', '0123456789ab', enc({ ...good, h: 0 })],
    ['rooms not an array', '0123456789ab', enc({ ...good, r: 'lobby' })],
    ['a room name too long', '0123456789ab', enc({ ...good, r: [['x'.repeat(256), ['abc-1']]] })],
    ['an empty room name', '0123456789ab', enc({ ...good, r: [['', ['abc-1']]] })],
    ['a member that is no connection id', '0123456789ab', enc({ ...good, r: [['lobby', ['<script>']]] })],
    ['a member twice', '0123456789ab', enc({ ...good, r: [['lobby', ['abc-1', 'abc-1']]] })],
    ['a room twice', '0123456789ab', enc({ ...good, r: [['lobby', ['abc-1']], ['lobby', ['abc-2']]] })],
    ['a room with no member', '0123456789ab', enc({ ...good, r: [['lobby', []]] })],
    ['too many rooms', '0123456789ab', enc({ ...good, r: Array.from({ length: 101 }, (_, i) => [`r${i}`, ['abc-1']]) })],
    ['too many members', '0123456789ab', enc({ ...good, r: [['lobby', Array.from({ length: 1001 }, (_, i) => `abc-${i.toString(36)}`)]] })],
    ['over maxRecordBytes', '0123456789ab', new Uint8Array(BOUNDS.maxRecordBytes + 1)],
  ];
  for (const [what, key, bytes] of cases) {
    assert.throws(() => decodePresence(key, bytes, BOUNDS), (err: unknown) => err instanceof HotlineError && err.code === 'HOTLINE_E_PRESENCE_RECORD', what);
  }
});

test('a node over the bounds publishes what fits, marked incomplete, within maxRecordBytes', () => {
  const rooms: Record<string, string[]> = {};
  for (let i = 0; i < 300; i++) rooms[`room-${i}`] = Array.from({ length: 20 }, (_, j) => `abcdefghij-${(i * 20 + j).toString(36)}`);
  const small: PresenceBounds = { maxRecordBytes: 16 * 1024, maxRooms: 100, maxMembers: 1000 };
  const { bytes, incomplete } = encodePresence(record('0123456789ab', 'n', rooms), small);
  assert.equal(incomplete, true);
  assert.ok(bytes.byteLength <= small.maxRecordBytes, `${bytes.byteLength} bytes`);
  const back = decodePresence('0123456789ab', bytes, small);
  assert.equal(back.incomplete, true);
  assert.ok(back.rooms.size > 0 && back.rooms.size <= 100);
});

function view(node = 'self', epoch = 'ffffffffffff', since = 5000) {
  let now = 0;
  const changes: RoomChange[] = [];
  const v = new PresenceView({ node, epoch, since }, 3, { now: () => now, changed: (c) => changes.push(...c) });
  return { v, changes, advance: (ms: number) => (now += ms) };
}

test('the view is the union of its sources: an id listed by two sources joins once and leaves with the last', () => {
  const { v, changes } = view();
  v.localJoined('lobby', 'loc-1');
  assert.equal(v.apply(record('aaaaaaaaaaaa', 'node-a', { lobby: ['a-1', 'loc-1'] }), true), 'applied');
  assert.deepEqual(v.members('lobby'), ['loc-1', 'a-1']);
  v.localLeft('lobby', 'loc-1');
  assert.deepEqual(v.members('lobby'), ['loc-1', 'a-1'], 'still listed by node-a');
  v.apply(record('aaaaaaaaaaaa', 'node-a', { lobby: ['a-1'] }, 2), true);
  assert.deepEqual(v.members('lobby'), ['a-1']);
  assert.deepEqual(changes, [
    { room: 'lobby', joined: ['loc-1'], left: [] },
    { room: 'lobby', joined: ['a-1'], left: [] },
    { room: 'lobby', joined: [], left: ['loc-1'] },
  ]);
  assert.equal(v.apply(record('aaaaaaaaaaaa', 'node-a', { lobby: ['a-1'] }, 2), true), 'unchanged', 'a record read again is nothing new');
  assert.equal(v.apply(record('ffffffffffff', 'self', {}), true), 'own');
});

test('a stale record (a dead node read at start) counts only once its seq moves; expiry removes silent peers, not while deaf', () => {
  const { v, changes, advance } = view();
  v.apply(record('aaaaaaaaaaaa', 'node-a', { lobby: ['a-1'] }), false);
  assert.deepEqual(v.members('lobby'), [], 'pending: counts for nothing');
  assert.equal(v.peers()[0]!.phase, 'pending');
  advance(50);
  v.apply(record('aaaaaaaaaaaa', 'node-a', { lobby: ['a-1'] }, 2), false);
  assert.deepEqual(v.members('lobby'), ['a-1'], 'heard again: active');
  advance(300);
  assert.deepEqual(v.expire(300), [], 'exactly 300 ms is not past');
  v.heardAllNow();
  advance(299);
  assert.deepEqual(v.expire(300), [], 'heardAllNow gave a fresh window');
  advance(2);
  assert.deepEqual(v.expire(300).map((p) => p.epoch), ['aaaaaaaaaaaa']);
  assert.deepEqual(v.members('lobby'), []);
  assert.deepEqual(changes.at(-1), { room: 'lobby', joined: [], left: ['a-1'] });
});

test('of two processes of one node name the later counts; a restart replaces at once; older records of this node are its to delete', () => {
  const { v, changes } = view();
  v.apply(record('aaaaaaaaaaaa', 'node-a', { lobby: ['old-1', 'both-1'] }, 9, 1000), true);
  v.apply(record('bbbbbbbbbbbb', 'node-a', { lobby: ['new-1', 'both-1'] }, 1, 2000), true);
  assert.deepEqual(v.members('lobby').sort(), ['both-1', 'new-1']);
  assert.deepEqual(v.peers().map((p) => [p.epoch, p.phase]), [['aaaaaaaaaaaa', 'superseded'], ['bbbbbbbbbbbb', 'active']]);
  assert.deepEqual(changes.at(-1), { room: 'lobby', joined: ['new-1'], left: ['old-1'] }, 'one batch; the member both list neither left nor joined');
  assert.equal(changes.flatMap((c) => c.joined).filter((id) => id === 'both-1').length, 1);
  // The later one's key is deleted (it closed): the earlier, still heard, counts again.
  v.removed('bbbbbbbbbbbb');
  assert.deepEqual(v.members('lobby').sort(), ['both-1', 'old-1']);
  // This node's own name: an older process is stale, a later one supersedes this one.
  assert.equal(v.apply(record('cccccccccccc', 'self', { lobby: ['x-1'] }, 1, 4000), true), 'older-self');
  assert.equal(v.superseded, false);
  v.apply(record('dddddddddddd', 'self', { lobby: ['x-2'] }, 1, 6000), true);
  assert.equal(v.superseded, true);
});

test('the view tracks at most maxPeers', () => {
  const { v } = view();
  for (const e of ['aaaaaaaaaaaa', 'bbbbbbbbbbbb', 'cccccccccccc']) assert.equal(v.apply(record(e, `n-${e}`, {}), true), 'applied');
  assert.equal(v.apply(record('dddddddddddd', 'n-d', { lobby: ['d-1'] }), true), 'peer-limit');
  assert.deepEqual(v.members('lobby'), []);
});

test('presence options: defaults, and refusals by name', () => {
  const o = resolvePresenceOptions(undefined);
  assert.equal(o.heartbeat, 1000);
  assert.equal(o.expireAfter, 3000);
  assert.equal(o.maxAge, 60_000);
  assert.throws(() => resolvePresenceOptions({ heartbeat: 1000, expireAfter: 1500 }), /at least 2 × heartbeat/);
  assert.throws(() => resolvePresenceOptions({ bucket: 'a.b' }), /bucket/);
  assert.throws(() => resolvePresenceOptions({ maxPeers: 0 }), /maxPeers/);
});
