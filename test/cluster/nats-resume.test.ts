import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connect } from '../../src/client/index.js';
import { wsClient } from '../helpers/clients.js';
import { createHost } from '../../src/index.js';
import { runHotline } from '../e2e/hotline-process.js';
import { quietLogger } from '../helpers/quiet-logger.js';
import { until } from '../helpers/until.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { TestNatsServer } from '../helpers/nats-server.js';
import { roomPlugin } from '../rooms/room-plugin.js';
import { ExactnessChecker, NumberedPump, streamPlugin } from '../session/fixtures.js';

const NODE_SCRIPT = fileURLToPath(new URL('./nats-host-process.ts', import.meta.url));

function startNode(plugin: string, nats: string, bucket: string, cluster = false): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', NODE_SCRIPT, plugin, nats, bucket, ...(cluster ? ['cluster'] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /ready (\d+)/.exec(out);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.once('exit', (code) => reject(new Error(`node exited with ${code} before ready: ${out}`)));
  });
}

function kill9(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

test('node A killed -9 mid-stream: its session clients resume on node B from the NATS bucket, every message once and in order, conn.state carried', { timeout: 60_000 }, async () => {
  const nats = await new TestNatsServer().start();
  const p = pluginDir(streamPlugin(10));
  const a = await startNode(p.entry, nats.url, 'resume');
  const b = await startNode(p.entry, nats.url, 'resume');
  // The address is read at each attempt: after the kill, the load balancer (this variable) sends clients to B.
  let port = a.port;
  const clients = Array.from({ length: 3 }, () => connect(() => `ws://127.0.0.1:${port}/`, { backoff: { initialDelay: 50, maxDelay: 300 } }));
  const checks = clients.map((c) => new ExactnessChecker(c));
  const pump = new NumberedPump(clients);
  try {
    await Promise.all(checks.map((ch) => ch.until(() => ch.replies >= 50 && ch.ticks >= 20, 'traffic on node A')));
    await kill9(a.child);
    port = b.port;
    await Promise.all(checks.map((ch) => ch.until(() => ch.resumes >= 1, 'resumed on node B')));
    const floor = checks.map((ch) => ch.replies + 30);
    await Promise.all(checks.map((ch, i) => ch.until(() => ch.replies >= floor[i]!, 'traffic on node B')));
    await pump.drain(checks);
    for (const [i, ch] of checks.entries()) {
      assert.deepEqual(ch.errors, [], `client ${i}: nothing lost, duplicated or reordered, either way (the plugin checks client seqs in conn.state)`);
      assert.deepEqual(ch.lost, [], `client ${i}: the session itself was not lost`);
      assert.equal(ch.resumes, 1, `client ${i}: resumed exactly once`);
      assert.equal(ch.replies, pump.sent[i]);
    }
  } finally {
    await pump.stop();
    for (const c of clients) c.close();
    await kill9(a.child);
    await kill9(b.child);
    p.remove();
    await nats.stop();
  }
});

test('node A killed -9: the session resumes on node B in its rooms, so a room send from node C reaches it once and presence lists it', { timeout: 60_000 }, async () => {
  const nats = await new TestNatsServer().start();
  const p = pluginDir(roomPlugin('v1'));
  const [a, b, c] = await Promise.all([0, 1, 2].map(() => startNode(p.entry, nats.url, 'roomresume', true)));
  let port = a!.port;
  const client = connect(() => `ws://127.0.0.1:${port}/`, { backoff: { initialDelay: 50, maxDelay: 300 } });
  const got: string[] = [];
  const lost: string[] = [];
  let resumed = 0;
  client.on('message', (d) => got.push(String(d)));
  client.on('resumed', () => resumed++);
  client.on('lost-session', (info) => lost.push(info.code));
  const ask = async (cmd: string, prefix: string): Promise<string> => {
    const from = got.length;
    client.send(cmd);
    let hit: string | undefined;
    await until(() => (hit = got.slice(from).find((m) => m.startsWith(prefix))) !== undefined, `the reply to ${cmd}`, 20_000);
    return hit!;
  };
  const other = await wsClient(`ws://127.0.0.1:${c!.port}/`);
  const otherAsk = async (cmd: string): Promise<string> => {
    const n = other.inbox.messages.length;
    other.send(cmd);
    await other.inbox.waitFor(n + 1);
    return other.inbox.messages[n]!;
  };
  try {
    const id = (await ask('id', 'id:')).slice(3);
    assert.equal(await ask('join:lobby', 'joined:'), 'joined:true');
    assert.equal(await ask('join:game', 'joined:'), 'joined:true');
    const otherId = (await otherAsk('id')).slice(3);
    assert.equal(await otherAsk('join:lobby'), 'joined:true');
    const both = 'members:' + JSON.stringify([id, otherId].sort());
    await until(async () => (await otherAsk('members:lobby')) === both, 'presence on C lists the session on A', 20_000);
    await kill9(a!.child);
    // The client retries dead A until C has dropped A's members (presence expiry, seconds): from then on, only a
    // membership on B can list the session again.
    await until(async () => (await otherAsk('members:lobby')) === 'members:' + JSON.stringify([otherId]), "C drops A's members", 20_000);
    assert.equal(resumed, 0);
    port = b!.port;
    await until(() => resumed === 1, 'resumed on node B', 20_000);
    await until(async () => (await otherAsk('members:lobby')) === both && (await otherAsk('members:game')) === 'members:' + JSON.stringify([id]), 'presence lists the session on B', 20_000);
    const heard = got.length;
    other.send('say:lobby:from C');
    await until(() => got.slice(heard).includes('v1|from C'), 'the room send from C reaches the session on B', 20_000);
    assert.equal(await ask('rooms', 'rooms:'), 'rooms:' + JSON.stringify(['lobby', 'game']));
    assert.equal(await ask('id', 'id:'), 'id:' + id, 'the same connection id');
    assert.equal(got.filter((m) => m === 'v1|from C').length, 1, 'delivered once');
    assert.equal(resumed, 1);
    assert.deepEqual(lost, []);
  } finally {
    client.close();
    other.ws.terminate();
    await Promise.all([a, b, c].map((n) => kill9(n!.child)));
    p.remove();
    await nats.stop();
  }
});

test('NATS killed under a host: its status says degraded, session clients keep being served locally, and it comes back up', { timeout: 30_000 }, async () => {
  const nats = await new TestNatsServer().start();
  const p = pluginDir(streamPlugin(10));
  const host = await createHost({ plugin: p.entry, listen: [{ transport: 'ws', port: 0 }], sessions: { store: 'nats', servers: nats.url, bucket: 'degraded' }, logger: quietLogger });
  const client = connect(`ws://127.0.0.1:${host.addresses()[0]!.port}/`);
  const check = new ExactnessChecker(client);
  const pump = new NumberedPump([client]);
  try {
    await check.until(() => check.replies >= 20, 'traffic');
    assert.equal(host.status().sessionStore?.state, 'up');
    await nats.kill();
    await until(() => host.status().sessionStore?.state === 'degraded', 'degraded');
    const floor = check.replies + 30;
    await check.until(() => check.replies >= floor, 'local service while NATS is down');
    assert.ok((host.status().sessionStore?.deferredWrites as number) > 0, 'the writes NATS missed are counted');
    await nats.start();
    await until(() => host.status().sessionStore?.state === 'up' && host.status().sessionStore?.dirty === 0, 'up and written back', 20_000);
    await pump.drain([check]);
    assert.deepEqual(check.errors, []);
    assert.deepEqual(check.lost, []);
  } finally {
    await pump.stop();
    client.close();
    await host.close();
    p.remove();
    await nats.stop();
  }
});

test('hotline start --cluster with NATS unreachable: refused with HOTLINE_E_CLUSTER_UNAVAILABLE; --cluster-wait bounds the wait', { timeout: 60_000 }, async () => {
  const nats = new TestNatsServer();
  await nats.start();
  await nats.kill();
  const p = pluginDir(streamPlugin(10));
  try {
    const r = await runHotline(['dev', p.entry, '--port', '0', '--admin', path.join(p.dir, 'a.sock'), '--cluster', nats.url], p.dir);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr + r.stdout, /HOTLINE_E_CLUSTER_UNAVAILABLE/);
    const w = await runHotline(['dev', p.entry, '--port', '0', '--admin', path.join(p.dir, 'b.sock'), '--cluster', nats.url, '--cluster-wait', '500'], p.dir);
    assert.notEqual(w.code, 0);
    assert.match(w.stderr + w.stdout, /HOTLINE_E_CLUSTER_UNAVAILABLE.*waited 500 ms|waited 500 ms[^]*HOTLINE_E_CLUSTER_UNAVAILABLE/);
    const bad = await runHotline(['dev', p.entry, '--cluster', 'http://x'], p.dir);
    assert.match(bad.stderr + bad.stdout, /HOTLINE_E_CONFIG/);
  } finally {
    p.remove();
    await nats.stop();
  }
});
