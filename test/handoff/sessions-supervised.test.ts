/**
 * `hotline start --sessions`: the supervisor's workers share one file session store through a lease
 * (src/handoff/session-lease.ts). Session clients streaming both ways resume exactly across a kill -9 of the worker
 * (the supervisor restarts it) and across a process upgrade (they cannot move, so they are sent away with a reconnect
 * hint and resume on the new worker). The real bin, real processes and sockets.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { adminStatus, HotlineProcess, runHotline } from '../e2e/hotline-process.js';
import { pluginDir } from '../helpers/plugin-dir.js';
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
