/**
 * Rooms across nodes (issue 13): a real nats-server of the test's own and three forked node processes. A room spread
 * over the three nodes: every member receives every message once, in per-origin order, counted by sequence number;
 * subscriptions follow local membership; hostile messages on a room subject are refused by reason and counted.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect as natsConnect } from '@nats-io/transport-node';
import { encodeEnvelope, roomSubject } from '../../src/cluster/room-envelope.js';
import type { HostStatus } from '../../src/index.js';
import { TestNatsServer } from '../helpers/nats-server.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { until } from '../helpers/until.js';
import { Member, Pump, RoomNode, busPlugin } from './room-fixtures.js';

const cluster = (s: HostStatus) => s.cluster!;

/** Until every node is subscribed to `n` rooms, each confirmed by the server. */
async function subscribed(nodes: RoomNode[], n: number[]): Promise<void> {
  await until(async () => {
    const st = await Promise.all(nodes.map((x) => x.status()));
    return st.every((s, i) => cluster(s).subscriptions === n[i] && cluster(s).unconfirmedSubscriptions === 0);
  }, `subscriptions ${n.join('/')}`, 15_000);
}

test('a room over 3 nodes: every member gets every message of every origin once, in order; subscriptions follow local members', { timeout: 120_000 }, async () => {
  const nats = await new TestNatsServer().start();
  const p = pluginDir(busPlugin('v1'));
  const nodes: RoomNode[] = [];
  const members: Member[] = [];
  try {
    for (const name of ['A', 'B', 'C']) nodes.push(await RoomNode.start(p.entry, nats.url, name));
    const byNode = await Promise.all(nodes.map(async (n) => Promise.all([0, 1, 2].map(() => Member.connect(n.url)))));
    members.push(...byNode.flat());
    for (const m of members) await m.ask('join:lobby');
    await subscribed(nodes, [1, 1, 1]);

    // Publishers on each node, at once: 3 origins × 1,200 messages, in bursts of 100.
    const N = 1_200;
    const origins = ['A', 'B', 'C'];
    await Promise.all(origins.map(async (o, i) => {
      for (let k = 0; k < N; k += 100) await byNode[i]![0]!.ask(`burst:lobby:${o}:${k}:100`);
    }));
    await until(() => members.every((m) => origins.every((o) => m.count(o) >= N)), 'every message at every member', 30_000);
    for (const [i, m] of members.entries()) {
      assert.deepEqual(m.errors, [], `member ${i}: no duplicate, no reordering`);
      assert.deepEqual([...m.missed], [], `member ${i}: nothing missed`);
      for (const o of origins) assert.equal(m.count(o), N, `member ${i}: ${N} from ${o}, once each`);
    }
    const st = await Promise.all(nodes.map((n) => n.status()));
    for (const [i, s] of st.entries()) {
      const c = cluster(s);
      assert.equal(c.state, 'up');
      assert.equal(c.published, N, `node ${origins[i]} published each of its messages once`);
      assert.equal(c.received, 2 * N, `node ${origins[i]} received the other two origins' messages once each`);
      assert.equal(c.delivered, 3 * 2 * N, 'and delivered each to its 3 members');
      assert.deepEqual([c.gaps, c.missed, c.duplicates, c.dropped], [0, 0, 0, 0]);
      assert.deepEqual(c.origins.map((x) => [x.origin.split('~')[0], x.received, x.missed]).sort(), origins.filter((o) => o !== origins[i]).map((o) => [o, N, 0]));
      assert.deepEqual(s.rooms.largest, [{ room: 'lobby', members: 3 }]);
    }

    // Subscriptions follow membership: `side` has a member on A only; C joins it, then leaves it again.
    const [a0, b0, c0] = [byNode[0]![1]!, byNode[1]![0]!, byNode[2]![1]!];
    await a0.ask('join:side');
    await subscribed(nodes, [2, 1, 1]);
    await c0.ask('join:side');
    await subscribed(nodes, [2, 1, 2]);
    // B has no member in `side`, and publishes to it all the same.
    await b0.ask('burst:side:BS:0:10');
    await until(() => a0.count('BS') === 10 && c0.count('BS') === 10, 'side on A and C');
    const cBefore = cluster(await nodes[2]!.status()).received;
    await c0.ask('leave:side');
    await subscribed(nodes, [2, 1, 1]);
    await b0.ask('burst:side:BS:10:10');
    // B's next lobby message reaches C after the side ones would have (FIFO from one origin): C is quiet on side.
    await b0.ask(`burst:lobby:B:${N}:1`);
    await until(() => a0.count('BS') === 20 && c0.count('B') === N + 1, 'side on A, lobby on C');
    assert.equal(c0.count('BS'), 10, 'C left side: no more of its messages');
    assert.equal(cluster(await nodes[2]!.status()).received, cBefore + 1, 'C received only the lobby message: it unsubscribed from side');
    assert.equal(cluster(await nodes[1]!.status()).subscriptions, 1, 'B never subscribed to side');

    // Direct delivery to a connection on another node: 0 from toConnection (not queued here), delivered by C alone.
    const target = byNode[2]![2]!;
    const id = (await target.ask('id')).slice('ok:id:'.length);
    for (let k = 0; k < 50; k++) assert.equal(await a0.ask(`direct:${id}:D:${k}`), 'ok:direct:0');
    assert.equal(await a0.ask('direct:nowhere0-1:D:0'), 'ok:direct:0', 'an id no node has');
    assert.equal(await a0.ask('direct:not an id:D:0'), 'ok:direct:0');
    await until(() => target.count('D') === 50, 'the direct messages on C');
    await until(async () => cluster(await nodes[1]!.status()).direct.received === 51, 'B saw them too');
    assert.deepEqual(target.errors, []);
    assert.deepEqual([...target.missed], []);
    assert.ok(members.every((m) => m === target || m.count('D') === 0), 'only the target got them');
    const [da, db, dc] = (await Promise.all(nodes.map((n) => n.status()))).map((s) => cluster(s).direct);
    assert.deepEqual(da, { sent: 51, received: 0, delivered: 0 }, 'A sent 50 + 1 (the malformed id was not sent)');
    assert.deepEqual(db, { sent: 0, received: 51, delivered: 0 });
    assert.deepEqual(dc, { sent: 0, received: 51, delivered: 50 });
  } finally {
    for (const m of members) m.close();
    for (const n of nodes) await n.kill();
    p.remove();
    await nats.stop();
  }
});

test('hostile messages on a room subject: refused by reason and counted, never delivered, the node serves on', { timeout: 60_000 }, async () => {
  const nats = await new TestNatsServer().start();
  const p = pluginDir(busPlugin('v1'));
  const node = await RoomNode.start(p.entry, nats.url, 'A', 'buffer', 1024);
  const m = await Member.connect(node.url);
  const nc = await natsConnect({ servers: nats.url });
  try {
    await m.ask('join:lobby');
    await subscribed([node], [1]);
    const subject = roomSubject('hl.roomtest', 'lobby');
    const good = encodeEnvelope('X~000000000001', 7, 1, 'X:0');
    const bad: Array<[string, Uint8Array]> = [
      ['empty', new Uint8Array(0)],
      ['short', Buffer.from([0x48, 1, 0])],
      ['magic', Buffer.concat([Buffer.from([0x00]), good.subarray(1)])],
      ['version', Buffer.concat([Buffer.from([0x48, 9]), good.subarray(2)])],
      ['flags', Buffer.concat([Buffer.from([0x48, 1, 0x80]), good.subarray(3)])],
      ['origin length 0', Buffer.concat([Buffer.from([0x48, 1, 0, 0]), good.subarray(4)])],
      ['origin length past the end', Buffer.concat([good.subarray(0, 3), Buffer.from([64]), good.subarray(4, 10)])],
      ['origin characters', encodeEnvelope('X\n', 7, 1, 'x')],
      ['seq 0', encodeEnvelope('X~1', 7, 0, 'x')],
      ['seq not an integer', encodeEnvelope('X~1', 7, 1.5, 'x')],
      ['seq NaN', encodeEnvelope('X~1', 7, NaN, 'x')],
      ['a direct message on a room subject', encodeEnvelope('X~1', 7, 1, 'x', 'abc-1')],
    ];
    for (const [, b] of bad) nc.publish(subject, b);
    // On the direct subject: a room message, a direct one whose id is no connection id, one cut inside its id.
    const direct = 'hl.roomtest.direct';
    const badDirect = [encodeEnvelope('X~1', 7, 1, 'x'), encodeEnvelope('X~1', 7, 1, 'x', 'NOT AN ID'), encodeEnvelope('X~1', 7, 1, '', 'abc-1').subarray(0, 18)];
    for (const b of badDirect) nc.publish(direct, b);
    // Over the node's payload bound (limits.maxPayload 1024), well under the server's.
    nc.publish(subject, encodeEnvelope('X~000000000001', 7, 1, 'y'.repeat(2_000)));
    nc.publish(subject, good);
    nc.publish(subject, good); // a replay: a duplicate
    nc.publish(subject, encodeEnvelope('X~000000000001', 7, 5, 'X:4')); // a gap of 3
    await nc.flush();
    await until(() => m.count('X') === 2, 'the two well-formed messages');
    await until(async () => cluster(await node.status()).duplicates === 1, 'the duplicate counted');
    const c = cluster(await node.status());
    assert.deepEqual(c.refused, { 'too-large': 1, malformed: bad.length + badDirect.length }, 'each malformed message refused and counted');
    assert.deepEqual([c.received, c.duplicates, c.gaps, c.missed], [2, 1, 1, 3]);
    assert.deepEqual(m.errors, [], 'the replay was not delivered');
    const metrics = await node.metrics();
    assert.match(metrics, new RegExp(`hotline_cluster_refused_messages_total\\{reason="malformed"\\} ${bad.length + badDirect.length}\\b`));
    assert.match(metrics, /hotline_cluster_duplicate_messages_total 1\b/);
    assert.match(metrics, /hotline_cluster_missed_messages_total 3\b/);
    assert.match(metrics, /hotline_cluster_up 1\b/);
    await m.ask('burst:lobby:A:0:3');
    assert.equal(m.count('A'), 3, 'the node serves on');
  } finally {
    await nc.close();
    m.close();
    await node.kill();
    p.remove();
    await nats.stop();
  }
});

test('a plugin swap on one node while the room carries traffic from all three: membership intact, 0 lost, 0 duplicated', { timeout: 120_000 }, async () => {
  const nats = await new TestNatsServer().start();
  const p = pluginDir(busPlugin('v1'));
  const nodes: RoomNode[] = [];
  const members: Member[] = [];
  const pumps: Pump[] = [];
  try {
    for (const name of ['A', 'B', 'C']) nodes.push(await RoomNode.start(p.entry, nats.url, name));
    const byNode = await Promise.all(nodes.map(async (n) => Promise.all([0, 1].map(() => Member.connect(n.url)))));
    members.push(...byNode.flat());
    for (const m of members) await m.ask('join:lobby');
    await subscribed(nodes, [1, 1, 1]);
    const origins = ['A', 'B', 'C'];
    pumps.push(...origins.map((o, i) => new Pump(byNode[i]![0]!, 'lobby', o)));
    await until(() => members.every((m) => origins.every((o) => m.count(o) >= 100)), 'traffic before the swap', 30_000);
    p.write(busPlugin('v2'));
    const r = await nodes[1]!.reload();
    assert.equal(r.record?.outcome, 'switched', `B swapped (${r.error ?? ''})`);
    const floor = members.map((m) => origins.map((o) => m.count(o) + 100));
    await until(() => members.every((m, i) => origins.every((o, j) => m.count(o) >= floor[i]![j]!)), 'traffic after the swap', 30_000);
    for (const pump of pumps) await pump.stop();
    await until(() => members.every((m) => origins.every((o, j) => m.last.get(o) === pumps[j]!.sent - 1)), 'the last message of every origin everywhere', 30_000);
    for (const [i, m] of members.entries()) {
      assert.deepEqual(m.errors, [], `member ${i}: no duplicate, no reordering`);
      assert.deepEqual([...m.missed], [], `member ${i}: nothing lost`);
      for (const [j, o] of origins.entries()) assert.equal(m.count(o), pumps[j]!.sent, `member ${i}: every message of ${o}`);
    }
    const b = await nodes[1]!.status();
    assert.equal(b.plugin?.version, 'v2');
    assert.deepEqual(b.rooms.largest, [{ room: 'lobby', members: 2 }], 'the swap kept the membership');
    assert.deepEqual([b.cluster!.gaps, b.cluster!.duplicates, b.cluster!.dropped], [0, 0, 0]);
  } finally {
    for (const pump of pumps) await pump.stop().catch(() => undefined);
    for (const m of members) m.close();
    for (const n of nodes) await n.kill();
    p.remove();
    await nats.stop();
  }
});
