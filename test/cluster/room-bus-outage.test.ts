/**
 * NATS killed and restarted under three forked nodes carrying a room (issue 13). Node A drops cross-node messages
 * while NATS is down, node B buffers them. Local delivery never stops; every message is either delivered once, in
 * order, or counted (the sender's dropped count, the receivers' missed count by sequence number); nothing is
 * delivered twice; cross-node delivery resumes, and B's buffer is published when NATS is back.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type HostStatus, createHost } from '../../src/index.js';
import { quietLogger } from '../helpers/quiet-logger.js';
import { TestNatsServer } from '../helpers/nats-server.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { until } from '../helpers/until.js';
import { Member, Pump, RoomNode, busPlugin } from './room-fixtures.js';

const cluster = (s: HostStatus) => s.cluster!;

async function statuses(nodes: RoomNode[]): Promise<HostStatus[]> {
  return Promise.all(nodes.map((n) => n.status()));
}

test('NATS killed and restarted mid-traffic: local delivery goes on, drops and buffer counted, delivery resumes, nothing twice', { timeout: 120_000 }, async () => {
  const nats = await new TestNatsServer().start();
  const p = pluginDir(busPlugin('v1'));
  const nodes: RoomNode[] = [];
  const pumps: Pump[] = [];
  const members: Member[] = [];
  try {
    nodes.push(await RoomNode.start(p.entry, nats.url, 'A', 'drop'));
    nodes.push(await RoomNode.start(p.entry, nats.url, 'B', 'buffer'));
    nodes.push(await RoomNode.start(p.entry, nats.url, 'C', 'buffer'));
    const byNode = await Promise.all(nodes.map(async (n) => Promise.all([0, 1].map(() => Member.connect(n.url)))));
    members.push(...byNode.flat());
    const nodeOf = (m: Member) => ['A', 'B', 'C'][byNode.findIndex((list) => list.includes(m))]!;
    for (const m of members) await m.ask('join:lobby');
    await until(async () => (await statuses(nodes)).every((s) => cluster(s).subscriptions === 1 && cluster(s).unconfirmedSubscriptions === 0), 'subscribed', 15_000);
    const origins = ['A', 'B'];
    pumps.push(new Pump(byNode[0]![0]!, 'lobby', 'A'), new Pump(byNode[1]![0]!, 'lobby', 'B'));
    await until(() => members.every((m) => origins.every((o) => m.count(o) >= 100)), 'cross-node traffic', 30_000);

    await nats.kill();
    await until(async () => (await statuses(nodes)).every((s) => cluster(s).state === 'degraded'), 'every node degraded', 15_000);
    // Local delivery never stops: each publisher's own node's members keep getting all of it.
    const local = [byNode[0]!, byNode[1]!].map((list, i) => list.map((m) => m.count(origins[i]!) + 200));
    await until(() => [byNode[0]!, byNode[1]!].every((list, i) => list.every((m, j) => m.count(origins[i]!) >= local[i]![j]!)), 'local delivery while NATS is down', 30_000);
    const down = await statuses(nodes);
    assert.ok(cluster(down[0]!).dropped > 0, 'A (drop) counts what it did not publish');
    assert.ok(cluster(down[1]!).buffered > 0 && cluster(down[1]!).dropped === 0, 'B (buffer) holds it');
    const cBefore = byNode[2]!.map((m) => origins.map((o) => m.count(o)));

    await nats.start();
    await until(async () => (await statuses(nodes)).every((s) => cluster(s).state === 'up' && cluster(s).buffered === 0 && cluster(s).unconfirmedSubscriptions === 0), 'up again, subscribed again, the buffer published', 20_000);
    await until(() => byNode[2]!.every((m, i) => origins.every((o, j) => m.count(o) >= cBefore[i]![j]! + 100)), 'cross-node delivery resumed on C', 30_000);
    for (const pump of pumps) await pump.stop();
    await until(() => members.every((m) => origins.every((o, j) => m.last.get(o) === pumps[j]!.sent - 1)), 'the last message of each origin everywhere', 30_000);

    const st = await statuses(nodes);
    const [a, b] = [cluster(st[0]!), cluster(st[1]!)];
    assert.equal(a.published + a.dropped, pumps[0]!.sent, 'A: every message published or counted as dropped');
    assert.equal(b.dropped, 0, 'B dropped nothing: its buffer held the outage');
    assert.equal(b.published, pumps[1]!.sent, 'B published every message, the buffered ones after NATS came back');
    assert.ok(b.bufferedTotal > 0);
    for (const m of members) {
      const at = nodeOf(m);
      const s = cluster(st[['A', 'B', 'C'].indexOf(at)]!);
      assert.deepEqual(m.errors, [], `member on ${at}: nothing delivered twice or out of order`);
      for (const [j, o] of origins.entries()) {
        const sent = pumps[j]!.sent;
        if (o === at) {
          assert.equal(m.count(o), sent, `member on ${at}: every local message of ${o}, NATS or not`);
          continue;
        }
        const missed = m.missed.get(o) ?? 0;
        assert.equal(m.count(o) + missed, sent, `member on ${at}: each of ${o}'s messages delivered or missing`);
        const counted = s.origins.find((x) => x.origin.startsWith(`${o}~`))!;
        assert.equal(counted.missed, missed, `node ${at} counted the ${missed} messages of ${o} its members missed`);
        assert.equal(counted.received, m.count(o));
        if (o === 'A') assert.ok(missed >= a.dropped, `what A dropped (${a.dropped}) is missed on ${at} (${missed})`);
      }
      assert.equal(s.duplicates, 0);
    }
    const report = st.map((s, i) => `${'ABC'[i]}: published ${cluster(s).published}, dropped ${cluster(s).dropped}, buffered ${cluster(s).bufferedTotal}, missed ${cluster(s).missed} in ${cluster(s).gaps} gaps`);
    console.log(`# sent A ${pumps[0]!.sent}, B ${pumps[1]!.sent}; ${report.join('; ')}`);
  } finally {
    for (const pump of pumps) await pump.stop().catch(() => undefined);
    for (const m of members) m.close();
    for (const n of nodes) await n.kill();
    p.remove();
    await nats.stop();
  }
});

test('a host with cluster: /readyz lists the bus as a dependency, degraded while NATS is down, and the status says so', { timeout: 60_000 }, async () => {
  const nats = await new TestNatsServer().start();
  const p = pluginDir(busPlugin('v1'));
  const host = await createHost({ plugin: p.entry, logger: quietLogger, cluster: { servers: nats.url, name: 'ready' }, httpAdmin: { listen: '127.0.0.1:0' } });
  const a = host.httpAdminAddress!;
  const readyz = async () => (await (await fetch(`http://${a.host}:${a.port}/readyz`)).json()) as { state: string; degraded?: string[]; dependencies: Record<string, boolean> };
  try {
    // `cluster` is the bus's connection, `nats` presence's (each its own: the bus's is noEcho).
    assert.deepEqual(await readyz(), { ready: true, state: 'ready', dependencies: { nats: true, cluster: true } });
    await nats.kill();
    await until(async () => (await readyz()).degraded?.includes('cluster') === true, 'the bus degraded', 20_000);
    assert.equal((await readyz()).state, 'degraded');
    assert.equal(host.status().cluster?.state, 'degraded');
    await nats.start();
    await until(async () => (await readyz()).state === 'ready', 'ready again', 20_000);
    assert.equal(host.status().cluster?.disconnects, 1);
  } finally {
    await host.close();
    p.remove();
    await nats.stop();
  }
});
