/**
 * The supervisor's watchdog end to end (issue 11, inline mode): `hotline start --sessions --watchdog-timeout 1000`
 * with a plugin whose onMessage spins forever on one magic message. The worker's event loop stops, its heartbeat
 * stops, and the supervisor kills and restarts it: a new worker PID under the same supervisor PID, a plain client
 * served again once it reconnects, session clients resumed with nothing lost, and HOTLINE_E_WORKER_HUNG in status.
 * Real bin, real processes, real sockets.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { adminStatus, HotlineProcess, runHotline } from '../e2e/hotline-process.js';
import { wsClient } from '../helpers/clients.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { until } from '../helpers/until.js';
import { sessionTraffic, streamPlugin } from '../session/fixtures.js';

interface Status {
  pid: number;
  supervisor: { pid: number; workerPid: number; restarts: number; watchdog: { timeoutMs: number; hangs: number; last?: { code: string; pid: number; silentMs: number } } };
}

/** streamPlugin, whose onMessage blocks its event loop for good on the message `hang`. */
function spinningPlugin(): string {
  const source = streamPlugin(10);
  const at = 'onMessage(conn, data) {';
  assert.ok(source.includes(at));
  // 'spinning' goes out first (a socket write is attempted at once), so a test knows the loop is blocked from here.
  return source.replace(at, `${at}\n    if (data === 'hang') { conn.send('spinning'); while (true) {} }`);
}

/** A plain client's reply to `n`, skipping the ticks streamPlugin sends it. */
async function reply(c: Awaited<ReturnType<typeof wsClient>>, n: number): Promise<void> {
  c.send(String(n));
  await until(() => c.inbox.messages.includes(`r${n}`), `the reply r${n}`, 15_000);
}

test('a worker whose onMessage spins forever is killed by the watchdog and restarted; clients are served again, sessions lose nothing', { timeout: 120_000 }, async (t) => {
  const p = pluginDir(spinningPlugin());
  const admin = path.join(p.dir, 'admin.sock');
  const { proc, ready } = await HotlineProcess.start(['start', p.entry, '--port', '0', '--admin', admin, '--sessions', '--watchdog-timeout', '1000'], p.dir);
  const { clients, checks, pump, flowing } = sessionTraffic(ready.url, 2);
  try {
    await flowing('replies before the hang');
    const first = await adminStatus<Status>(admin, p.dir);
    assert.equal(first.supervisor.watchdog.timeoutMs, 1_000);
    assert.equal(first.supervisor.watchdog.hangs, 0);

    const plain = await wsClient(ready.url);
    await reply(plain, 1);
    const hungAt = Date.now();
    plain.send('hang');
    const lost = await plain.closed;
    const killedMs = Date.now() - hungAt;
    assert.equal(lost.code, 1006, 'the hung worker’s plain connection is cut when it is killed');

    await Promise.all(checks.map((ch) => ch.until(() => ch.resumes >= 1, 'a resume after the hang', 30_000)));
    const resumedMs = Date.now() - hungAt;
    await flowing('replies after the restart');

    const after = await adminStatus<Status>(admin, p.dir);
    assert.notEqual(after.supervisor.workerPid, first.supervisor.workerPid, 'a new worker');
    assert.equal(after.pid, after.supervisor.workerPid);
    assert.equal(after.supervisor.pid, proc.child.pid, 'the same supervisor');
    assert.equal(after.supervisor.pid, first.supervisor.pid);
    assert.equal(after.supervisor.restarts, 1);
    assert.equal(after.supervisor.watchdog.hangs, 1);
    assert.equal(after.supervisor.watchdog.last?.code, 'HOTLINE_E_WORKER_HUNG');
    assert.equal(after.supervisor.watchdog.last?.pid, first.supervisor.workerPid);
    assert.ok(proc.logs.some((r) => r.code === 'HOTLINE_E_WORKER_HUNG'), 'logged with its code');
    const text = await runHotline(['status', '--admin', admin], p.dir);
    assert.match(text.stdout, /^watchdog {4}1000 ms, 1 hung worker\(s\) killed \(latest: HOTLINE_E_WORKER_HUNG, worker \d+ silent \d+ ms\)$/m);

    const again = await wsClient(ready.url);
    await reply(again, 1);
    again.ws.close();

    await pump.drain(checks);
    for (const [i, ch] of checks.entries()) {
      assert.deepEqual(ch.errors, [], `client ${i}: exactly once, in order, both ways`);
      assert.deepEqual(ch.lost, [], `client ${i}: no session lost`);
      assert.equal(ch.replies, pump.sent[i]);
    }
    t.diagnostic(`hang → plain connection cut (worker killed): ${killedMs} ms; hang → every session client resumed: ${resumedMs} ms (watchdogTimeout 1000)`);
  } finally {
    await pump.stop();
    for (const c of clients) c.close();
    proc.kill('SIGTERM');
    await proc.exited;
    p.remove();
  }
});

/** True while `pid` runs (a zombie, dead but not yet reaped by its new parent, does not count). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

test('a kill -9 of the supervisor while the worker spins: the worker does not outlive it (orphan guard)', { timeout: 60_000 }, async (t) => {
  const p = pluginDir(spinningPlugin());
  const admin = path.join(p.dir, 'admin.sock');
  // A watchdog far longer than the test: only the worker's own guard can end it.
  const { proc, ready } = await HotlineProcess.start(['start', p.entry, '--port', '0', '--admin', admin, '--watchdog-timeout', '600000'], p.dir);
  let plain: Awaited<ReturnType<typeof wsClient>> | undefined;
  try {
    const { supervisor } = await adminStatus<Status>(admin, p.dir);
    plain = await wsClient(ready.url);
    plain.send('hang');
    await until(() => plain!.inbox.messages.includes('spinning'), 'the worker spinning', 15_000);
    assert.ok(running(supervisor.workerPid));
    const killedAt = Date.now();
    proc.kill('SIGKILL');
    await proc.exited;
    await until(() => !running(supervisor.workerPid), 'the orphaned worker gone', 10_000);
    t.diagnostic(`supervisor killed → orphaned worker gone: ${Date.now() - killedAt} ms`);
    await plain.closed;
  } finally {
    plain?.ws.terminate();
    proc.kill('SIGKILL');
    p.remove();
  }
});
