/**
 * Every way a user signals `hotline start` (issue 10, faults 2 and 3): a terminal's Ctrl-C and systemd's
 * KillMode=control-group signal the whole process group or cgroup, so the worker gets the signal too. It must obey
 * only its supervisor: a stop is graceful (WebSocket 1012, a reconnect hint for session clients, exit 0), a SIGUSR2
 * to the group upgrades without closing anyone, a SIGHUP to the group reloads. And a supervisor killed with -9
 * leaves no orphan worker behind. The real bin, real processes, real sockets; each supervisor runs in a process
 * group of its own (`detached`), so the test never signals its own group.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import WebSocket from 'ws';
import { SESSION_PROTOCOL } from '../../src/session/protocol.js';
import { adminStatus, HotlineProcess } from '../e2e/hotline-process.js';
import { wsClient } from '../helpers/clients.js';
import { listeningSockets } from '../helpers/listening-sockets.js';
import { counterPlugin, pluginDir } from '../helpers/plugin-dir.js';
import { until as pollUntil } from '../helpers/until.js';

interface Status {
  supervisor: { pid: number; workerPid: number; upgrades: Array<{ outcome: string }> };
}

/** A raw session client (protocol hotline.v1): records the frames it gets and how it was closed. */
async function sessionClient(url: string): Promise<{ frames: Array<{ t: string }>; closed: Promise<{ code: number; reason: string }> }> {
  const ws = new WebSocket(url, SESSION_PROTOCOL);
  const frames: Array<{ t: string }> = [];
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })));
  const welcomed = new Promise<void>((resolve, reject) => {
    ws.on('message', (data) => {
      const f = JSON.parse(String(data)) as { t: string };
      frames.push(f);
      if (f.t === 'welcome') resolve();
    });
    ws.once('error', reject);
    ws.once('close', () => reject(new Error('closed before the welcome')));
  });
  ws.once('open', () => ws.send(JSON.stringify({ t: 'hello', v: 1, token: null, rx: 0 })));
  await welcomed;
  return { frames, closed };
}

/** The shared poll (helpers/until.ts), with these tests' 15 s default. */
const until = (cond: () => boolean, what: string, timeoutMs = 15_000): Promise<void> => pollUntil(cond, what, timeoutMs);

/** A process that is gone or a zombie (its new parent may not reap it at once) is not running. */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function startDetached(extra: string[] = []) {
  const p = pluginDir(counterPlugin('v1'));
  const admin = path.join(p.dir, 'admin.sock');
  const { proc, ready } = await HotlineProcess.start(['start', p.entry, '--port', '0', '--admin', admin, '--sessions', ...extra], p.dir, 20_000, { detached: true });
  const status = await adminStatus<Status>(admin, p.dir);
  return { p, admin, proc, ready, workerPid: status.supervisor.workerPid };
}

/**
 * How each way of stopping is sent. `everyProcess`: also to the worker's PID, as a cgroup-wide signal reaches it
 * whatever process group it is in (systemd's KillMode=control-group, `systemctl kill`).
 */
const stops: Array<{ name: string; signal: NodeJS.Signals; group: boolean; everyProcess: boolean }> = [
  { name: 'Ctrl-C (SIGINT to the process group)', signal: 'SIGINT', group: true, everyProcess: false },
  { name: 'kill -TERM -<pgid>', signal: 'SIGTERM', group: true, everyProcess: false },
  { name: 'systemd KillMode=control-group (SIGTERM to every process)', signal: 'SIGTERM', group: true, everyProcess: true },
  { name: 'SIGTERM to the supervisor PID', signal: 'SIGTERM', group: false, everyProcess: false },
];

/** Send `signal` to the supervisor's group (or PID), and to the worker too with `everyProcess`. */
function signal(supervisorPid: number, workerPid: number, sig: NodeJS.Signals, group: boolean, everyProcess: boolean): void {
  process.kill(group ? -supervisorPid : supervisorPid, sig);
  if (everyProcess) process.kill(workerPid, sig);
}

for (const s of stops) {
  test(`${s.name}: clients get 1012 (session clients a reconnect hint first), the send-away, exit 0`, { timeout: 60_000 }, async () => {
    const { p, proc, ready, workerPid } = await startDetached();
    try {
      // Where the process tree listens: exactly the address it printed, nowhere else.
      const port = Number(new URL(ready.url).port);
      await until(() => listeningSockets(proc.child.pid!).length > 0, 'a listening socket');
      assert.deepEqual([...new Set(listeningSockets(proc.child.pid!).map((l) => `${l.address}:${l.port}`))], [`127.0.0.1:${port}`]);

      const plain = await wsClient(ready.url);
      plain.send('hi');
      assert.match(await plain.inbox.next(), /^v1:1:/);
      const session = await sessionClient(ready.url);

      signal(proc.child.pid!, workerPid, s.signal, s.group, s.everyProcess);

      const [pc, sc, exit] = await Promise.all([plain.closed, session.closed, proc.exited]);
      assert.equal(pc.code, 1012, 'the plain client is told the service restarts');
      assert.equal(sc.code, 1012, 'the session client too');
      assert.ok(
        session.frames.some((f) => f.t === 'reconnect'),
        `the session client got a reconnect hint: ${JSON.stringify(session.frames)}`,
      );
      assert.deepEqual(exit, { code: 0, signal: null }, proc.stderrLines.slice(-10).join('\n'));
    } finally {
      proc.kill('SIGKILL');
      await proc.exited;
      p.remove();
    }
  });
}

test('SIGUSR2 and SIGHUP to every process (systemctl kill): an upgrade that moves every client, a reload; the worker ignores both', { timeout: 90_000 }, async () => {
  const { p, admin, proc, ready, workerPid } = await startDetached();
  try {
    const client = await wsClient(ready.url);
    client.send('a');
    assert.match(await client.inbox.next(), /^v1:1:/);

    signal(proc.child.pid!, workerPid, 'SIGUSR2', true, true);
    // While the upgrade runs, the old worker refuses a status by name (HOTLINE_E_WORKER_PHASE, it is leaving): ask again.
    const statusNow = () => adminStatus<Status>(admin, p.dir).catch((err: Error) => {
      if (!err.message.includes('HOTLINE_E_WORKER_PHASE')) throw err;
      return undefined;
    });
    let status = await statusNow();
    for (let i = 0; i < 400 && (status === undefined || status.supervisor.upgrades.length === 0); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      status = await statusNow();
    }
    assert.ok(status, 'a status after the upgrade');
    assert.deepEqual(
      status.supervisor.upgrades.map((u) => u.outcome),
      ['committed'],
      proc.stderrLines.slice(-10).join('\n'),
    );
    assert.notEqual(status.supervisor.workerPid, workerPid, 'a new worker serves');
    client.send('b');
    assert.match(await client.inbox.next(), /^v1:2:/, 'the same connection, moved with its state');

    const from = proc.logs.length;
    p.write(counterPlugin('v2'));
    signal(proc.child.pid!, status.supervisor.workerPid, 'SIGHUP', true, true);
    await proc.waitForSwap('counter@v2', from);
    client.send('c');
    assert.match(await client.inbox.next(), /^v2:3:/, 'reloaded, still the same connection');
    assert.equal((await adminStatus<Status>(admin, p.dir)).supervisor.workerPid, status.supervisor.workerPid, 'the worker survived the SIGHUP');

    proc.kill('SIGTERM');
    assert.equal((await client.closed).code, 1012);
    assert.equal((await proc.exited).code, 0);
  } finally {
    proc.kill('SIGKILL');
    await proc.exited;
    p.remove();
  }
});

test('kill -9 of the supervisor ends its worker too: no orphan holds the port', { timeout: 60_000 }, async () => {
  const { p, proc, ready, workerPid } = await startDetached();
  try {
    const client = await wsClient(ready.url);
    proc.kill('SIGKILL');
    await proc.exited;
    await until(() => !running(workerPid), `worker ${workerPid} to exit`);
    await client.closed;
  } finally {
    proc.kill('SIGKILL');
    await proc.exited;
    p.remove();
  }
});
