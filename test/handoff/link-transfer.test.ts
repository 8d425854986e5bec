/**
 * issue 15: a link arriving at a process upgrade (src/handoff/link-transfer.ts through the lane's codec, then
 * src/links/link-table.ts). The happy transfer decodes as sent; every hostile one (each field wrong, truncated,
 * oversized, out of its link's bounds, a head that is a whole frame) is refused with HOTLINE_E_HANDOFF_FRAME before it
 * reaches a link; semantic refusals at adoption (a name twice, after the commit, options that do not read back) are
 * HOTLINE_E_LINK_ADOPT.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import v8 from 'node:v8';
import { isHotlineError } from '../../src/errors.js';
import type { LinkTransfer } from '../../src/handoff/protocol.js';
import { TransferCodec } from '../../src/handoff/transfer-codec.js';
import type { LinkGate } from '../../src/links/link.js';
import { linkSpec, specOfKey } from '../../src/links/link-options.js';
import { LinkTable } from '../../src/links/link-table.js';

const spec = linkSpec('feed', { url: 'tcp://127.0.0.1:7000', framing: 'length', maxPayload: 100, maxQueuedSends: 3, maxQueuedBytes: 50 });
const wsSpec = linkSpec('ws', { url: 'ws://127.0.0.1:7001/feed' });
const tlsSpec = linkSpec('sec', { url: 'tls://127.0.0.1:7002' });

const counters = { reconnects: 1, bytesIn: 10, bytesOut: 5, messagesIn: 2, messagesOut: 1, framingErrors: 0, dropped: 0, handlersAbandoned: 0, upgradesMoved: 0, upgradesReconnected: 0 };

function good(over: Partial<Record<keyof LinkTransfer, unknown>> = {}): LinkTransfer {
  return {
    t: 'link',
    name: 'feed',
    key: spec.key,
    wire: 'stream',
    head: Uint8Array.from([0, 0, 0, 9, 1, 2]),
    state: { count: 3, seen: new Set([1]) },
    version: '1.2.0',
    counters: { ...counters },
    attempt: 0,
    everOpened: true,
    open: true,
    sends: ['a', Uint8Array.from([1])],
    events: [{ kind: 'message', data: 'm1' }, { kind: 'open' }, { kind: 'close', info: { reason: 'x', code: 'HOTLINE_E_LINK_FRAME', willReconnect: true } }],
    ...over,
  } as LinkTransfer;
}

const decode = (msg: unknown) => new TransferCodec().decode(v8.serialize(msg));

test('a link transfer decodes as it was sent', () => {
  const msg = good();
  assert.deepEqual(decode(msg), msg);
  const wsMsg = good({ name: 'ws', key: wsSpec.key, wire: 'ws', head: Uint8Array.from([0x81, 0x05, 104]), sends: [] });
  assert.deepEqual(decode(wsMsg), wsMsg);
  const stateOnly = good({ name: 'sec', key: tlsSpec.key, wire: undefined, reason: 'TLS', head: new Uint8Array(0) });
  assert.deepEqual(decode(stateOnly), stateOnly);
});

const hostile: Array<[string, Partial<Record<keyof LinkTransfer, unknown>>]> = [
  ['a key that is not JSON', { key: '{' }],
  ['a key that does not read back', { key: spec.key.replace('"maxPayload":100', '"maxPayload":100.0,"x":1') }],
  ['a key for another name', { name: 'other' }],
  ['a name that is not a link name', { name: '../x', key: spec.key }],
  ['an unknown wire', { wire: 'udp' }],
  ['a TLS link with its socket', { name: 'sec', key: tlsSpec.key, wire: 'stream', head: new Uint8Array(0) }],
  ['a ws link with a stream socket', { name: 'ws', key: wsSpec.key, wire: 'stream', head: new Uint8Array(0) }],
  ['a head that is a whole length frame', { head: Uint8Array.from([0, 0, 0, 1, 7]) }],
  ['a head declaring a frame over maxPayload', { head: Uint8Array.from([0, 0, 1, 0]) }],
  ['a head without a socket', { wire: undefined, head: Uint8Array.from([1]) }],
  ['a head that is not bytes', { head: 'abc' }],
  ['a negative counter', { counters: { ...counters, bytesIn: -1 } }],
  ['a missing counter', { counters: { reconnects: 0 } }],
  ['a fractional attempt', { attempt: 1.5 }],
  ['a socket for a link that was not open', { open: false }],
  ['more queued sends than maxQueuedSends', { sends: ['a', 'b', 'c', 'd'] }],
  ['more queued bytes than maxQueuedBytes', { sends: ['x'.repeat(51)] }],
  ['a queued send that is not a message', { sends: [{}] }],
  ['an event of unknown kind', { events: [{ kind: 'exec' }] }],
  ['a carried message over maxPayload', { events: [{ kind: 'message', data: 'x'.repeat(101) }] }],
  ['a close with a code that is not one', { events: [{ kind: 'close', info: { reason: 'x', code: 'rm -rf', willReconnect: true } }] }],
  ['events that are not an array', { events: 'open' }],
  ['a version that is not a string', { version: 7 }],
];

for (const [what, over] of hostile) {
  test(`refused with HOTLINE_E_HANDOFF_FRAME: ${what}`, () => {
    assert.throws(
      () => decode(good(over)),
      (err: unknown) => isHotlineError(err, 'HOTLINE_E_HANDOFF_FRAME'),
    );
  });
}

test('a lines head holding a whole line, or longer than maxPayload + 1, is refused', () => {
  const lines = linkSpec('l', { url: 'tcp://127.0.0.1:7000', maxPayload: 4 });
  const msg = (head: string) => good({ name: 'l', key: lines.key, head: Buffer.from(head), sends: [], events: [] });
  assert.deepEqual((decode(msg('abcd\r')) as LinkTransfer).head, Buffer.from('abcd\r'));
  for (const head of ['ab\ncd', 'abcdef']) assert.throws(() => decode(msg(head)), (err: unknown) => isHotlineError(err, 'HOTLINE_E_HANDOFF_FRAME'));
});

test('too many carried events are refused', () => {
  const events = Array.from({ length: 100_001 }, () => ({ kind: 'open' }));
  assert.throws(() => decode(good({ events })), (err: unknown) => isHotlineError(err, 'HOTLINE_E_HANDOFF_FRAME'));
});

const gate: LinkGate = { target: {}, suspended: true, park: () => undefined, enter: () => undefined, leave: () => undefined, limits: { maxQueuedMessages: 100 } };
const snapshot = { state: 1, version: 'v', counters, attempt: 0, everOpened: true, open: false, sends: [], events: [] };
const deps = { connect: () => assert.fail('nothing connects before the commit'), random: () => 0, log: () => undefined };

test('adoption: a name twice, after the commit, or a tampered key is HOTLINE_E_LINK_ADOPT; nothing connects before the commit', () => {
  const table = new LinkTable(gate, deps);
  assert.throws(() => table.adopt({ name: 'feed', key: spec.key, snapshot, reason: 'x' }), (err: unknown) => isHotlineError(err, 'HOTLINE_E_LINK_ADOPT'), 'not deferred');
  table.defer();
  table.adopt({ name: 'feed', key: spec.key, snapshot, reason: 'x' });
  assert.equal(table.get('feed')?.phase, 'connecting');
  assert.throws(() => table.adopt({ name: 'feed', key: spec.key, snapshot, reason: 'x' }), (err: unknown) => isHotlineError(err, 'HOTLINE_E_LINK_ADOPT'), 'twice');
  assert.throws(() => specOfKey('feed', spec.key + ' '), (err: unknown) => isHotlineError(err, 'HOTLINE_E_LINK_ADOPT'));
  assert.throws(() => specOfKey('feed', 'x'.repeat(1024 * 1024 + 1)), (err: unknown) => isHotlineError(err, 'HOTLINE_E_LINK_ADOPT'));
  // Claimed by nobody: the commit closes it, by the rule, and it never connected.
  table.commit();
  assert.equal(table.get('feed'), undefined);
});

test('adoption: a claim with the same options gets the adopted link and its carried state; other options displace it', () => {
  const table = new LinkTable(gate, deps);
  table.defer();
  const owner = { retired: false, version: '2', state: undefined, label: 'relay@2' };
  const claimed = table.claim(owner, 'feed', { url: 'tcp://127.0.0.1:7000', framing: 'length', maxPayload: 100, maxQueuedSends: 3, maxQueuedBytes: 50 });
  assert.equal(claimed.state, undefined);
  table.adopt({ name: 'feed', key: spec.key, snapshot: { ...snapshot, state: { count: 9 } }, reason: 'x' });
  assert.deepEqual(claimed.state, { count: 9 }, 'a claim made in init gets the carried state');
  assert.equal(claimed.status.reconnects, 1, 'counters carried');
  table.claim(owner, 'other', { url: 'tcp://127.0.0.1:7003' });
  table.adopt({ name: 'other', key: spec.key.replace('"name":"feed"', '"name":"other"'), snapshot, reason: 'x' });
  assert.equal(table.get('other')!.spec.url, 'tcp://127.0.0.1:7003', 'the claim with other options keeps its own link');
  table.closeAll();
});
