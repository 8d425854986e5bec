import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect as natsConnect } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { NatsLink } from '../../src/cluster/nats-connection.js';
import { NatsSessionStore } from '../../src/cluster/nats-session-store.js';
import { isHotlineError } from '../../src/errors.js';
import { TestNatsServer } from '../helpers/nats-server.js';
import { until } from '../helpers/until.js';

const ID = 'AAAAAAAAAAAAAAAAAAAAAA';

async function codeOf(p: unknown): Promise<string> {
  try {
    await p;
  } catch (err) {
    return isHotlineError(err) ? err.code : `not coded: ${String(err)}`;
  }
  return 'resolved';
}

test('two nodes race to take one session over: exactly one compare-and-set wins, the other gets HOTLINE_E_SESSION_CONFLICT', async () => {
  const nats = await new TestNatsServer().start();
  const stores = [0, 1, 2].map((i) => new NatsSessionStore({ servers: nats.url, bucket: 'race', node: `n${i}` }));
  try {
    const secrets = await Promise.all(stores.map((s) => s.secret()));
    assert.deepEqual(secrets[1], secrets[0], 'every node signs tokens with the one shared secret');
    const [a, b, c] = stores as [NatsSessionStore, NatsSessionStore, NatsSessionStore];
    await a.write(ID, { create: true, touchedAt: Date.now() });
    await a.write(ID, { out: [1, 'hello'], touchedAt: Date.now() });
    // b and c both read revision r and both try to take over at r.
    assert.equal((await b.get(ID))?.outSeq, 1);
    assert.equal((await c.get(ID))?.outSeq, 1);
    const results = await Promise.all([codeOf(b.write(ID, { gen: 1, touchedAt: Date.now() })), codeOf(c.write(ID, { gen: 1, touchedAt: Date.now() }))]);
    assert.deepEqual([...results].sort(), ['HOTLINE_E_SESSION_CONFLICT', 'resolved']);
    // The old owner learns it lost the session: at once through the notice, and at its next write in any case.
    const lost: string[] = [];
    a.onLost((id, err) => lost.push(`${id} ${(err as { code?: string }).code}`));
    assert.equal(await codeOf(a.write(ID, { out: [2, 'late'], touchedAt: Date.now() })), 'HOTLINE_E_SESSION_CONFLICT');
    assert.equal(a.status().conflicts, 1);
    const winner = results[0] === 'resolved' ? b : c;
    assert.equal(winner.status().owned, 1);
    // The loser's delete leaves the winner's record alone.
    await a.delete(ID);
    assert.equal((await stores[results[0] === 'resolved' ? 2 : 1]!.get(ID))?.gen, 1);
  } finally {
    await Promise.all(stores.map((s) => s.close()));
    await nats.stop();
  }
});

test('garbage in the bucket is refused with HOTLINE_E_SESSION_RECORD, never applied, and the store goes on', async () => {
  const nats = await new TestNatsServer().start();
  const store = new NatsSessionStore({ servers: nats.url, bucket: 'garbage', maxReplay: 10 });
  const nc = await natsConnect({ servers: nats.url });
  try {
    await store.secret();
    const kv = await new Kvm(nc).open('garbage');
    const bad: Array<[string, string]> = [
      ['notjson', '{{{'],
      ['array', '[1,2]'],
      ['wrongid', JSON.stringify({ v: 1, id: 'other', o: { n: 'x', e: 'y' }, i: 0, s: 0, m: [], t: 1, g: 0 })],
      ['negseq', JSON.stringify({ v: 1, id: 'negseq', o: { n: 'x', e: 'y' }, i: -1, s: 0, m: [], t: 1, g: 0 })],
      ['order', JSON.stringify({ v: 1, id: 'order', o: { n: 'x', e: 'y' }, i: 0, s: 5, m: [[3, 'a'], [2, 'b']], t: 1, g: 0 })],
      ['toomany', JSON.stringify({ v: 1, id: 'toomany', o: { n: 'x', e: 'y' }, i: 0, s: 99, m: Array.from({ length: 11 }, (_, k) => [k + 1, 'x']), t: 1, g: 0 })],
      ['nodata', JSON.stringify({ v: 1, id: 'nodata', o: { n: 'x', e: 'y' }, i: 0, s: 1, m: [[1, 7]], t: 1, g: 0 })],
      ['noowner', JSON.stringify({ v: 1, id: 'noowner', i: 0, s: 0, m: [], t: 1, g: 0 })],
    ];
    for (const [key, value] of bad) {
      await kv.put(key, value);
      assert.equal(await codeOf(store.get(key)), 'HOTLINE_E_SESSION_RECORD', key);
    }
    assert.equal(store.status().refusedRecords, bad.length);
    assert.equal(await store.get('bad.key'), undefined, 'a key that is no session id is never asked for');
    await store.write(ID, { create: true, touchedAt: Date.now() });
    assert.equal(store.status().owned, 1, 'still serving');
  } finally {
    await nc.close();
    await store.close();
    await nats.stop();
  }
});

test('NATS down: owned sessions go on (deferred, counted, degraded), reads fail with HOTLINE_E_CLUSTER_UNAVAILABLE; back up: written back', async () => {
  const nats = await new TestNatsServer().start();
  const store = new NatsSessionStore({ servers: nats.url, bucket: 'outage', timeout: 500 });
  const reader = new NatsSessionStore({ servers: nats.url, bucket: 'outage', timeout: 500 });
  try {
    await store.secret();
    await reader.secret();
    await store.write(ID, { create: true, touchedAt: Date.now() });
    await nats.kill();
    await until(() => store.status().state === 'degraded', 'degraded');
    for (let k = 1; k <= 5; k++) assert.equal(store.write(ID, { out: [k, `m${k}`], touchedAt: Date.now() }), undefined, 'not held back');
    assert.equal(store.status().deferredWrites, 5);
    assert.equal(store.status().dirty, 1);
    assert.equal(await codeOf(store.get('BBBBBBBBBBBBBBBBBBBBBB')), 'HOTLINE_E_CLUSTER_UNAVAILABLE');
    await nats.start();
    await until(() => store.status().state === 'up' && store.status().dirty === 0, 'written back');
    await until(() => reader.status().state === 'up', 'reader up');
    const r = await reader.get(ID);
    assert.deepEqual(r?.out.map((m) => m[1]), ['m1', 'm2', 'm3', 'm4', 'm5']);
  } finally {
    await store.close();
    await reader.close();
    await nats.stop();
  }
});

test('NATS missing at start: HOTLINE_E_CLUSTER_UNAVAILABLE at once, or after a bounded wait; a wait that sees it come up connects', async () => {
  const nats = new TestNatsServer();
  await nats.start();
  await nats.kill();
  try {
    assert.equal(await codeOf(NatsLink.open({ servers: nats.url, connectTimeout: 300 })), 'HOTLINE_E_CLUSTER_UNAVAILABLE');
    assert.equal(await codeOf(NatsLink.open({ servers: nats.url, atStart: 'wait', waitTimeout: 600, connectTimeout: 200 })), 'HOTLINE_E_CLUSTER_UNAVAILABLE');
    const waiting = NatsLink.open({ servers: nats.url, atStart: 'wait', waitTimeout: 20_000, connectTimeout: 200 });
    await nats.start();
    const link = await waiting;
    assert.equal(link.state, 'up');
    await link.close();
    await link.close();
    assert.equal(link.state, 'closed');
  } finally {
    await nats.stop();
  }
});
