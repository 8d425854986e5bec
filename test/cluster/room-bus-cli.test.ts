/**
 * `hotline start --cluster` (issue 13): two supervised nodes on a NATS of the test's own share a room, and
 * `hotline status` shows the cluster bus and the rooms with their local member counts; `hotline upgrade` of one node
 * carries its members, and its new worker subscribes to their room.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import type { HostStatus } from '../../src/index.js';
import { HotlineProcess, adminStatus, runHotline } from '../e2e/hotline-process.js';
import { TestNatsServer } from '../helpers/nats-server.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { until } from '../helpers/until.js';
import { Member, busPlugin } from './room-fixtures.js';

test('hotline start --cluster: two nodes share a room; hotline status shows the cluster and the rooms; an upgrade of one keeps the room', { timeout: 90_000 }, async () => {
  const nats = await new TestNatsServer().start();
  const p = pluginDir(busPlugin('v1'));
  const procs: HotlineProcess[] = [];
  const members: Member[] = [];
  try {
    const admins = [path.join(p.dir, 'a.sock'), path.join(p.dir, 'b.sock')];
    const urls: string[] = [];
    for (const admin of admins) {
      const { proc, ready } = await HotlineProcess.start(['start', p.entry, '--port', '0', '--admin', admin, '--cluster', nats.url], p.dir, 40_000);
      procs.push(proc);
      urls.push(ready.url);
    }
    const [a, b1, b2] = await Promise.all([Member.connect(urls[0]!), Member.connect(urls[1]!), Member.connect(urls[1]!)]);
    members.push(a!, b1!, b2!);
    for (const m of members) await m.ask('join:lobby');
    await until(async () => {
      const st = await Promise.all(admins.map((x) => adminStatus<HostStatus>(x, p.dir)));
      return st.every((s) => s.cluster?.subscriptions === 1 && s.cluster.unconfirmedSubscriptions === 0);
    }, 'both nodes subscribed', 20_000);
    await a!.ask('burst:lobby:A:0:20');
    await until(() => b1!.count('A') === 20 && b2!.count('A') === 20, 'A’s messages on B');
    assert.deepEqual([b1!.errors, b2!.errors], [[], []]);

    const human = await runHotline(['status', '--admin', admins[1]!], p.dir);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^cluster {5}default: NATS up \(nats:\/\/127\.0\.0\.1:\d+\), node \S+, 1 room subscriptions/m);
    assert.match(human.stdout, /received 20 \(delivered 40\), missed 0 in 0 gaps, duplicates 0, refused 0/);
    assert.match(human.stdout, /^rooms {7}1 with members here: lobby 2$/m);

    // hotline upgrade of node B: its members' sockets move to a new worker, whose bus subscribes to their room.
    const up = await runHotline(['upgrade', '--admin', admins[1]!, '--json'], p.dir, 60_000);
    assert.equal(up.code, 0, up.stderr + up.stdout);
    assert.equal((JSON.parse(up.stdout) as { outcome: string }).outcome, 'committed');
    await until(async () => {
      const s = await adminStatus<HostStatus>(admins[1]!, p.dir);
      return s.cluster?.subscriptions === 1 && s.cluster.unconfirmedSubscriptions === 0 && s.rooms.largest[0]?.members === 2;
    }, 'the new worker of B in the room, subscribed', 20_000);
    await a!.ask('burst:lobby:A:20:20');
    await b1!.ask('burst:lobby:B:0:10');
    await until(() => b1!.count('A') === 40 && b2!.count('A') === 40 && a!.count('B') === 10, 'both ways after the upgrade');
    for (const m of members) {
      assert.deepEqual(m.errors, []);
      assert.deepEqual([...m.missed], []);
    }
  } finally {
    for (const m of members) m.close();
    for (const proc of procs) {
      proc.kill('SIGTERM');
      await proc.exited;
    }
    p.remove();
    await nats.stop();
  }
});
