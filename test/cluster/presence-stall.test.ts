/**
 * A node whose process stalls (CPU starvation, a long GC) for longer than expireAfter must not expire its live peers
 * for its own stall: its first sweep after the stall runs before the records that arrived meanwhile are read (timers
 * run before I/O), so it is skipped and counted. Two ClusterPresence instances in this process, on a test NATS; the
 * stall is a real one (the main thread blocked).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NatsLink } from '../../src/cluster/nats-connection.js';
import { ClusterPresence } from '../../src/cluster/nats-presence.js';
import { resolvePresenceOptions } from '../../src/cluster/presence-options.js';
import { TestNatsServer } from '../helpers/nats-server.js';
import { until } from '../helpers/until.js';

const deps = { now: () => performance.now(), wallNow: () => Date.now(), connections: () => 1, log: () => undefined, changed: () => undefined };

test('a stall longer than expireAfter does not make a node expire its live peers', { timeout: 60_000 }, async () => {
  const nats = await new TestNatsServer().start();
  const options = resolvePresenceOptions({ heartbeat: 200, expireAfter: 1_000 });
  const links = await Promise.all([NatsLink.open({ servers: nats.url }), NatsLink.open({ servers: nats.url })]);
  const a = new ClusterPresence(links[0], 'stall-a', options, deps);
  const b = new ClusterPresence(links[1], 'stall-b', options, deps);
  try {
    await a.start();
    await b.start();
    a.joined('lobby', 'aaaaaaaaaa-1');
    await until(() => b.members('lobby').includes('aaaaaaaaaa-1'), 'b to see a member of a', 10_000);
    // The whole process stops for 2.5 expiry windows.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2_500);
    const after = Date.now();
    await until(() => Date.now() - after > 600, 'a few heartbeats after the stall', 5_000);
    const s = b.status();
    assert.equal(s.expiredPeers, 0, 'a was not expired for b\'s own stall');
    assert.ok(s.lateSweeps >= 1, `the sweep after the stall was skipped (${s.lateSweeps})`);
    assert.deepEqual(b.members('lobby'), ['aaaaaaaaaa-1']);
  } finally {
    await a.close();
    await b.close();
    for (const l of links) await l.close();
    await nats.stop();
  }
});
