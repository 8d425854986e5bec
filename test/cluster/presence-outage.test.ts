/**
 * Presence through a NATS outage (issue 13): the test's own nats-server is killed and restarted on its port and
 * store. Meanwhile local presence goes on (a join is in ctx.members at once), status says degraded, and nothing is
 * expired by a node that cannot hear; once NATS is back, each node re-publishes its record and the others see what
 * changed during the outage, once.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TestNatsServer } from '../helpers/nats-server.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { until } from '../helpers/until.js';
import { PRESENCE_PLUGIN, PresenceNode, sorted, tally } from './presence-fixtures.js';

test('NATS killed and restarted: local presence goes on, status degraded, the node re-publishes on reconnect and the others converge', { timeout: 120_000 }, async () => {
  const nats = await new TestNatsServer().start();
  const p = pluginDir(PRESENCE_PLUGIN);
  const [a, b] = (await Promise.all(['node-a', 'node-b'].map((n) => PresenceNode.start(p.entry, nats.url, n, 300, 1_500)))) as [PresenceNode, PresenceNode];
  try {
    const ma = await a.member('lobby');
    const mb = await b.member('lobby');
    for (const n of [a, b]) await until(async () => sorted(await n.members('lobby')).length === 2, `${n.name} sees both members`, 15_000);

    await nats.kill();
    for (const n of [a, b]) await until(async () => (await n.presence()).state === 'degraded', `${n.name} degraded`, 15_000);
    // Local presence goes on without NATS.
    const late = await a.member('lobby');
    assert.ok((await a.members('lobby')).includes(late.id), 'node A lists its new member at once, NATS down');
    assert.equal(tally(await a.events(), 'lobby', 'joined').get(late.id), 1, 'node A announced it to its plugin');
    // A node that hears nothing expires nobody: B keeps A's member as last known, over two expiry windows.
    const sinceDown = Date.now();
    await until(() => Date.now() - sinceDown > 2 * 1_500, 'two expiry windows with NATS down', 10_000);
    assert.ok((await b.members('lobby')).includes(ma.id), 'node B did not expire node A while it could not hear it');
    const degraded = await a.presence();
    assert.equal(degraded.state, 'degraded');
    assert.ok(degraded.deferredWrites >= 1, `node A deferred its writes (${degraded.deferredWrites})`);

    await nats.start();
    const all = sorted([ma.id, mb.id, late.id]);
    for (const n of [a, b]) await until(async () => JSON.stringify(sorted(await n.members('lobby'))) === JSON.stringify(all), `${n.name} sees the 3 members after the outage`, 20_000);
    for (const n of [a, b]) {
      const s = await n.presence();
      assert.equal(s.state, 'up', `${n.name}: up again`);
      assert.equal(s.peers.filter((x) => x.phase === 'active').length, 1, `${n.name}: its one peer is back`);
      const joins = tally(await n.events(), 'lobby', 'joined');
      assert.equal(joins.get(late.id), 1, `${n.name}: the member that joined during the outage was announced once`);
    }
    for (const m of [ma, mb, late]) m.client.ws.terminate();
  } finally {
    await Promise.all([a, b].map((n) => n.kill9()));
    await nats.stop();
    p.remove();
  }
});
