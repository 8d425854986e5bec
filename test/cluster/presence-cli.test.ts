/**
 * `hotline start --cluster URL --cluster-node NAME` (supervised) on two nodes: presence is on, the name reaches the
 * worker, and `hotline status` prints this node, its peer and the rooms with local and global counts.
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
    const nodes = [];
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
