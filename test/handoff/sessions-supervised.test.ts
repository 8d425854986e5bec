/**
 * `hotline start --sessions`: the supervisor's workers share one file session store through a lease
 * (src/handoff/session-lease.ts). Session clients streaming both ways resume exactly across a kill -9 of the worker
 * (the supervisor restarts it) and across a process upgrade (they cannot move, so they are sent away with a reconnect
 * hint and resume on the new worker). The real bin, real processes and sockets.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { connect } from '../../src/client/index.js';
import { adminStatus, HotlineProcess, runHotline } from '../e2e/hotline-process.js';
import { wsClient } from '../helpers/clients.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { until } from '../helpers/until.js';
import { roomPlugin } from '../rooms/room-plugin.js';
import { sessionTraffic, streamPlugin } from '../session/fixtures.js';

interface Status {
  pid: number;
  sessions?: number;
  supervisor: { workerPid: number; restarts: number };
}

test('start --sessions: session clients resume exactly across a kill -9 of the worker and a process upgrade', { timeout: 90_000 }, async () => {
  const p = pluginDir(streamPlugin(10));
  const admin = path.join(p.dir, 'admin.sock');
  const { proc, ready } = await HotlineProcess.start(['start', p.entry, '--port', '0', '--admin', admin, '--sessions'], p.dir);
  const { clients, checks, pump, flowing } = sessionTraffic(ready.url, 3);
  try {
    await flowing('replies before the kill');
    const first = await adminStatus<Status>(admin, p.dir);
    assert.equal(first.sessions, 3);
    process.kill(first.supervisor.workerPid, 'SIGKILL');
    await Promise.all(checks.map((ch) => ch.until(() => ch.resumes >= 1, 'a resume after the worker was killed', 30_000)));
    await flowing('replies after the restart');
    const restarted = await adminStatus<Status>(admin, p.dir);
    assert.notEqual(restarted.supervisor.workerPid, first.supervisor.workerPid);
    assert.equal(restarted.supervisor.restarts, 1);

    const up = await runHotline(['upgrade', '--admin', admin, '--json'], p.dir);
    assert.equal(up.code, 0, up.stderr + up.stdout);
    assert.equal((JSON.parse(up.stdout) as { outcome: string }).outcome, 'committed');
    await Promise.all(checks.map((ch) => ch.until(() => ch.resumes >= 2, 'a resume after the upgrade', 30_000)));
    await flowing('replies after the upgrade');
    const upgraded = await adminStatus<Status>(admin, p.dir);
    assert.notEqual(upgraded.supervisor.workerPid, restarted.supervisor.workerPid);
    assert.equal(upgraded.pid, upgraded.supervisor.workerPid);
    assert.equal(upgraded.sessions, 3);

    await pump.drain(checks);
    for (const [i, ch] of checks.entries()) {
      assert.deepEqual(ch.errors, [], `client ${i}: exactly once, in order, both ways`);
      assert.deepEqual(ch.lost, [], `client ${i}: no session lost`);
      assert.equal(ch.replies, pump.sent[i]);
    }
  } finally {
    await pump.stop();
    for (const c of clients) c.close();
    proc.kill('SIGKILL');
    await proc.exited;
    p.remove();
  }
});

test('start --sessions: a session client sent away by a process upgrade resumes on the new worker in its rooms', { timeout: 90_000 }, async () => {
  const p = pluginDir(roomPlugin('v1'));
  const admin = path.join(p.dir, 'admin.sock');
  const { proc, ready } = await HotlineProcess.start(['start', p.entry, '--port', '0', '--admin', admin, '--sessions'], p.dir);
  const client = connect(ready.url, { backoff: { initialDelay: 50, maxDelay: 300 } });
  const got: string[] = [];
  let resumed = 0;
  const lost: string[] = [];
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
  try {
    assert.equal(await ask('join:lobby', 'joined:'), 'joined:true');
    assert.equal(await ask('join:game', 'joined:'), 'joined:true');
    const up = await runHotline(['upgrade', '--admin', admin, '--json'], p.dir);
    assert.equal(up.code, 0, up.stderr + up.stdout);
    await until(() => resumed === 1, 'the resume on the new worker', 30_000);
    const other = await wsClient(ready.url);
    try {
      other.send('join:lobby');
      assert.equal(await other.inbox.next(), 'joined:true');
      const from = got.length;
      other.send('say:lobby:after the upgrade');
      await until(() => got.slice(from).includes('v1|after the upgrade'), 'the room send reaches the resumed session', 20_000);
    } finally {
      other.ws.terminate();
    }
    assert.equal(await ask('rooms', 'rooms:'), 'rooms:' + JSON.stringify(['lobby', 'game']));
    assert.deepEqual(lost, []);
  } finally {
    client.close();
    proc.kill('SIGKILL');
    await proc.exited;
    p.remove();
  }
});
