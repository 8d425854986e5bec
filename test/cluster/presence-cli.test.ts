/**
 * `hotline start --cluster URL --cluster-node NAME` (supervised) on two nodes: presence is on, the name reaches the
 * worker, and `hotline status` prints this node, its peer and the rooms with local and global counts. Then `hotline
 * upgrade` of one node: its member moves to the new worker, and the other node sees no leave and no second join.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { HotlineProcess, runHotline } from '../e2e/hotline-process.js';
import { wsClient } from '../helpers/clients.js';
import { TestNatsServer } from '../helpers/nats-server.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { until } from '../helpers/until.js';
import { PRESENCE_PLUGIN } from './presence-fixtures.js';

test('hotline start --cluster --cluster-node: presence across the two nodes, shown by hotline status', { timeout: 90_000 }, async () => {
  const nats = await new TestNatsServer().start();
  const p = pluginDir(PRESENCE_PLUGIN);
  const started: HotlineProcess[] = [];
  try {
    const nodes: Array<{ name: string; admin: string; url: string }> = [];
    for (const name of ['cli-a', 'cli-b']) {
      const admin = path.join(p.dir, `${name}.sock`);
      const { proc, ready } = await HotlineProcess.start(['start', p.entry, '--port', '0', '--admin', admin, '--cluster', nats.url, '--cluster-node', name], p.dir, 30_000);
      started.push(proc);
      nodes.push({ name, admin, url: ready.url });
    }
    const clients = await Promise.all(nodes.map((n) => wsClient(n.url)));
    for (const c of clients) {
      c.send(JSON.stringify({ join: 'lobby' }));
      await c.inbox.waitFor(1);
    }
    let text = '';
    await until(async () => {
      const r = await runHotline(['status', '--admin', nodes[0]!.admin], p.dir);
      text = r.stdout;
      return /room +lobby: 1 here, 2 on all nodes/.test(text);
    }, 'node cli-a to see both lobby members', 30_000);
    assert.match(text, /presence +node cli-a epoch [0-9a-f]{12}: NATS up, bucket hotline_presence, heartbeat 1000 ms, expiry 3000 ms; 1 peer\(s\)/);
    assert.match(text, /peer +cli-b epoch [0-9a-f]{12} active: 1 connections, 1 members in 1 rooms, last heartbeat \d+ ms ago/);
    const epoch = /presence +node cli-a epoch ([0-9a-f]{12})/.exec(text)![1]!;

    // hotline upgrade of node cli-a: its member moves to the new worker (same name, new epoch); node cli-b sees the
    // new epoch replace the old one, and the member neither leaves nor joins again.
    const up = await runHotline(['upgrade', '--admin', nodes[0]!.admin], p.dir, 60_000);
    assert.equal(up.code, 0, up.stderr + up.stdout);
    await until(async () => {
      const r = await runHotline(['status', '--admin', nodes[1]!.admin], p.dir);
      const m = /peer +cli-a epoch ([0-9a-f]{12}) active/.exec(r.stdout);
      text = r.stdout;
      return m !== null && m[1] !== epoch && !r.stdout.includes(`epoch ${epoch}`);
    }, 'node cli-b to follow cli-a to its new worker', 30_000);
    assert.match(text, /room +lobby: 1 here, 2 on all nodes/);
    const b = clients[1]!;
    b.send(JSON.stringify({ events: true }));
    await b.inbox.waitFor(2);
    const events = (JSON.parse(b.inbox.messages[1]!) as { events: Array<{ room: string; joined: string[]; left: string[] }> }).events;
    const aId = (JSON.parse(clients[0]!.inbox.messages[0]!) as { id: string }).id;
    assert.deepEqual(events.filter((e) => e.joined.includes(aId) || e.left.includes(aId)).map((e) => [e.joined.length, e.left.length]), [[1, 0]], `node cli-b: ${aId} joined once and never left through the upgrade: ${JSON.stringify(events)}`);
    // The moved connection is still served, by the new worker.
    clients[0]!.send(JSON.stringify({ members: 'lobby' }));
    await clients[0]!.inbox.waitFor(2);
    assert.equal((JSON.parse(clients[0]!.inbox.messages[1]!) as { members: string[] }).members.length, 2);

    const bad = await runHotline(['dev', p.entry, '--cluster-node', 'x'], p.dir);
    assert.match(bad.stderr + bad.stdout, /HOTLINE_E_CONFIG.*--cluster-node needs --cluster/);
    for (const c of clients) c.ws.close();
  } finally {
    for (const proc of started) {
      proc.kill('SIGTERM');
      await proc.exited;
    }
    await nats.stop();
    p.remove();
  }
});
