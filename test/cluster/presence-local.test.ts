/**
 * onPresence without a cluster (issue 13): one process, its own joins and leaves as events, in order, to the serving
 * version, across a swap; ctx.members reads the registry.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createHost } from '../../src/index.js';
import { wsClient } from '../helpers/clients.js';
import { TestNatsServer } from '../helpers/nats-server.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';
import { until } from '../helpers/until.js';
import { PRESENCE_PLUGIN, type PresenceEvent } from './presence-fixtures.js';

test('without a cluster, joins and leaves reach onPresence in order, also after a swap; ctx.members is this process', { timeout: 60_000 }, async () => {
  const p = pluginDir(PRESENCE_PLUGIN);
  const host = await createHost({ plugin: p.entry, listen: [{ transport: 'ws', port: 0 }], logger: quietLogger });
  const url = host.addresses()[0]!.url;
  const observer = await wsClient(url);
  const ask = async (msg: object) => {
    const n = observer.inbox.messages.length + 1;
    observer.send(JSON.stringify(msg));
    await observer.inbox.waitFor(n);
    return JSON.parse(observer.inbox.messages[n - 1]!) as { events: PresenceEvent[]; members: string[] };
  };
  try {
    const one = await wsClient(url);
    one.send(JSON.stringify({ join: 'lobby' }));
    await one.inbox.waitFor(1);
    const id1 = (JSON.parse(one.inbox.messages[0]!) as { id: string }).id;
    const two = await wsClient(url);
    two.send(JSON.stringify({ join: 'lobby' }));
    await two.inbox.waitFor(1);
    const id2 = (JSON.parse(two.inbox.messages[0]!) as { id: string }).id;
    assert.deepEqual((await ask({ members: 'lobby' })).members, [id1, id2]);
    assert.equal(host.status().presence, undefined, 'no cluster: no cluster presence in status');

    // A swap: the events go on to the new version (its state migrated from the old one's).
    p.write(PRESENCE_PLUGIN.replace("version: '1.0.0'", "version: '2.0.0'"));
    await host.reload();
    one.ws.close();
    await until(async () => (await ask({ events: true })).events.length >= 3, 'the leave after the swap', 10_000);
    assert.deepEqual((await ask({ events: true })).events, [
      { room: 'lobby', joined: [id1], left: [] },
      { room: 'lobby', joined: [id2], left: [] },
      { room: 'lobby', joined: [], left: [id1] },
    ]);
    assert.deepEqual((await ask({ members: 'lobby' })).members, [id2]);
    two.ws.close();
  } finally {
    observer.ws.close();
    await host.close();
    p.remove();
  }
});

test('with only the cluster option, /readyz names NATS as a dependency and says degraded while it is down', { timeout: 60_000 }, async () => {
  const nats = await new TestNatsServer().start();
  const p = pluginDir(PRESENCE_PLUGIN);
  const host = await createHost({ plugin: p.entry, logger: quietLogger, cluster: { servers: nats.url, node: 'ready-a' }, httpAdmin: { listen: '127.0.0.1:0' } });
  const a = host.httpAdminAddress!;
  const readyz = async () => (await (await fetch(`http://${a.host}:${a.port}/readyz`)).json()) as { state: string; dependencies: Record<string, boolean> };
  try {
    // `nats` is presence's connection, `cluster` the bus's (each its own: the bus's is noEcho).
    assert.deepEqual(await readyz(), { ready: true, state: 'ready', dependencies: { nats: true, cluster: true } });
    await nats.kill();
    await until(async () => (await readyz()).dependencies.nats === false, 'readyz to say nats is down', 20_000);
    assert.equal((await readyz()).state, 'degraded');
    assert.equal(host.status().presence?.state, 'degraded');
  } finally {
    await host.close();
    await nats.stop();
    p.remove();
  }
});
