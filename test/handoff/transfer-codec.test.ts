/**
 * The lane's transfer codec (src/handoff/transfer-codec.ts): a connection written field by field comes back equal
 * (as the exporter builds it, with `framing` present and undefined for a WebSocket),
 * its state a separate structured clone; before the receiver's hello, and for anything but a connection, bodies are
 * plain v8 serialisations, which is what an older build reads and writes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import v8 from 'node:v8';
import type { ConnTransfer } from '../../src/handoff/protocol.js';
import { LANE_HELLO, TransferCodec } from '../../src/handoff/transfer-codec.js';

const conns: ConnTransfer[] = [
  { t: 'conn', kind: 'ws', framing: undefined, remoteAddress: '127.0.0.1', protocol: '', head: new Uint8Array(0), opened: true, state: undefined, messages: [] },
  {
    t: 'conn',
    kind: 'ws',
    framing: undefined,
    remoteAddress: '::ffff:10.0.0.7',
    protocol: 'chat.v2 ü',
    head: Uint8Array.from([0x81, 0x85, 0, 0, 0, 0, 104]),
    opened: false,
    state: { seen: 3, when: new Date(0), tags: new Map([['a', new Set([1, 2])]]) },
    messages: ['queued', Uint8Array.from([1, 2, 3])],
  },
  { t: 'conn', kind: 'tcp', framing: 'lines', remoteAddress: '10.1.2.3', protocol: '', head: Buffer.from('half a li'), opened: true, state: 42, messages: [] },
  { t: 'conn', kind: 'tcp', framing: 'length', remoteAddress: '10.1.2.4', protocol: '', head: new Uint8Array(0), opened: true, state: null, messages: ['x'] },
];

/** Encode with a 5-byte reserve, as the lane does, and decode the body alone. */
function roundTrip(codec: TransferCodec, msg: Parameters<TransferCodec['encode']>[0]) {
  const frame = codec.encode(msg, 5);
  return { body: frame.subarray(5), decoded: codec.decode(frame.subarray(5)) };
}

test('a connection round-trips through the compact form, every field and the state intact', () => {
  const codec = new TransferCodec();
  codec.compact = true;
  for (const msg of conns) {
    const { body, decoded } = roundTrip(codec, msg);
    assert.equal(body[0], 1, 'compact tag');
    assert.deepEqual({ ...decoded, head: Buffer.from((decoded as ConnTransfer).head) }, { ...msg, head: Buffer.from(msg.head) });
  }
});

test('the state of each connection is its own clone, as with one v8 serialisation per connection', () => {
  const codec = new TransferCodec();
  codec.compact = true;
  const shared = { room: 'r1' };
  const a = roundTrip(codec, { ...conns[0]!, state: { shared } }).decoded as ConnTransfer;
  const b = roundTrip(codec, { ...conns[0]!, state: { shared } }).decoded as ConnTransfer;
  assert.notEqual((a.state as { shared: object }).shared, (b.state as { shared: object }).shared);
});

test('before the hello, and for the global state, bodies are plain v8 (what older builds read)', () => {
  const codec = new TransferCodec();
  for (const msg of conns) {
    const { body } = roundTrip(codec, msg);
    assert.deepEqual(v8.deserialize(body), msg);
  }
  codec.compact = true;
  const state = { t: 'state' as const, plugin: 'p', version: '1', state: { total: 9 } };
  const { body, decoded } = roundTrip(codec, state);
  assert.deepEqual(v8.deserialize(body), state);
  assert.deepEqual(decoded, state);
});

test('a body from an older build (whole transfer through v8) decodes', () => {
  const codec = new TransferCodec();
  for (const msg of conns) assert.deepEqual(codec.decode(v8.serialize(msg)), msg);
});

test('state that cannot be cloned throws at encode, so the exporter sends that connection away', () => {
  const codec = new TransferCodec();
  codec.compact = true;
  assert.throws(() => codec.encode({ ...conns[0]!, state: () => 1 }, 5));
  assert.throws(() => codec.encode({ ...conns[0]!, state: { f: Symbol('x') } }, 5));
});

test('a connection id travels in the compact form once the receiver says it reads ids (tag 2)', () => {
  const codec = new TransferCodec();
  codec.heard(LANE_HELLO);
  for (const msg of conns) {
    const withId: ConnTransfer = { ...msg, id: 'k3j9x0q2ab-1z' };
    const { body, decoded } = roundTrip(codec, withId);
    assert.equal(body[0], 2, 'tag 2: with the id');
    assert.deepEqual({ ...decoded, head: Buffer.from((decoded as ConnTransfer).head) }, { ...withId, head: Buffer.from(msg.head) });
  }
  // A transfer without an id (none to carry) keeps tag 1.
  assert.equal(roundTrip(codec, conns[0]!).body[0], 1);
});

test('ids and older builds: each pair of sender and receiver agrees, in both directions', () => {
  const withId: ConnTransfer = { ...conns[1]!, id: 'k3j9x0q2ab-2' };
  // An older receiver's hello has no `ids`: this sender keeps writing tag 1, which that build reads (the id is lost,
  // as it was before ids travelled).
  const toOld = new TransferCodec();
  toOld.heard({ t: 'codec', compact: 1 });
  const { body } = roundTrip(toOld, withId);
  assert.equal(body[0], 1);
  const { id: _dropped, ...withoutId } = withId;
  assert.deepEqual({ ...toOld.decode(body), head: withId.head }, { ...withoutId, head: withId.head });
  // An older sender ignores `ids` and writes tag 1 (or v8 before any hello): this receiver reads both, id absent.
  const fromOld = new TransferCodec();
  fromOld.compact = true;
  const oldBody = roundTrip(fromOld, conns[2]!).body;
  assert.equal(new TransferCodec().decode(oldBody).t, 'conn');
  assert.equal((new TransferCodec().decode(oldBody) as ConnTransfer).id, undefined);
  // Before the hello, the whole transfer goes through v8, id included: any build reads that.
  assert.deepEqual(new TransferCodec().decode(roundTrip(new TransferCodec(), withId).body), withId);
});
