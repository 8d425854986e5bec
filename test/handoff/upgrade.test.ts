/**
 * Process upgrade end to end: a real supervisor process, real worker processes, 200 WebSocket and 50 TCP clients
 * streaming numbered messages across three upgrades and three injected failures. Every reply names the message it
 * answers and the per-connection count, so one lost, duplicated or reordered message fails the test.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { adminRequest } from '../../src/admin/admin-client.js';
import type { UpgradeProgress, UpgradeSummary } from '../../src/handoff/upgrade.js';
import { type TcpClient, type WsClient, tcpClient, wsClient } from '../helpers/clients.js';
import { counterPlugin, pluginDir } from '../helpers/plugin-dir.js';
import { startSupervisor } from './supervisor-process.js';

const WS_CLIENTS = 200;
const TCP_CLIENTS = 50;

interface Status {
  pid: number;
  build: string | null;
  connections: number;
  supervisor: { pid: number; workerPid: number; upgrade?: UpgradeProgress };
}

const p = pluginDir(counterPlugin('v1'));
const admin = path.join(p.dir, 'admin.sock');
const envFile = path.join(p.dir, 'worker.env');
let sup: ChildProcess;
let supPid = 0;
const ws: WsClient[] = [];
const tcp: TcpClient[] = [];
const sent = new Map<WsClient | TcpClient, number>();
let closes = 0;

function setEnv(vars: Record<string, string>): void {
  writeFileSync(envFile, Object.entries(vars).map(([k, v]) => `${k}=${v}\n`).join(''));
}

const status = async () => (await adminRequest(admin, 'status')) as Status;
const upgrade = async () => (await adminRequest(admin, 'upgrade', 60_000)) as UpgradeSummary;

/** One message to every client; resolves when every client has all its replies. */
async function round(): Promise<void> {
  for (const c of [...ws, ...tcp]) {
    const n = (sent.get(c) ?? 0) + 1;
    sent.set(c, n);
    c.send(`m${n}`);
  }
  await Promise.all([...ws, ...tcp].map((c) => c.inbox.waitFor(sent.get(c)!, 30_000)));
}

/** Keep traffic flowing while `during` runs; returns its result. */
async function withTraffic<T>(during: () => Promise<T>): Promise<T> {
  let stop = false;
  const loop = (async () => {
    while (!stop) await round();
  })();
  try {
    return await during();
  } finally {
    stop = true;
    await loop;
  }
}

function assertContinuity(): void {
  assert.equal(closes, 0, 'no client saw a close');
  for (const c of [...ws, ...tcp]) {
    const n = sent.get(c)!;
    assert.equal(c.inbox.messages.length, n);
    c.inbox.messages.forEach((m, i) => {
      // counter plugin reply: `${tag}:${seen}:${total}|${data}`
      const [head, data] = m.split('|');
      assert.equal(data, `m${i + 1}`, 'replies in order, none lost or duplicated');
      assert.equal(Number(head!.split(':')[1]), i + 1, 'per-connection state carried over');
    });
  }
}

before(async () => {
  setEnv({ HOTLINE_BUILD: 'b1' });
  const info = await startSupervisor({ entry: p.entry, admin, envFile, readyTimeoutMs: 8000 });
  sup = info.child;
  supPid = info.pid;
  const [wsPort, tcpPort] = info.addresses.map((a) => a.port);
  const opening: Array<Promise<void>> = [];
  for (let i = 0; i < WS_CLIENTS; i++) opening.push(wsClient(`ws://127.0.0.1:${wsPort}/`).then((c) => void ws.push(c)));
  for (let i = 0; i < TCP_CLIENTS; i++) opening.push(tcpClient(tcpPort!).then((c) => void tcp.push(c)));
  await Promise.all(opening);
  for (const c of ws) void c.closed.then(() => closes++);
  for (const c of tcp) void c.closed.then(() => closes++);
  await round();
});

after(async () => {
  for (const c of ws) c.ws.terminate();
  for (const c of tcp) c.socket.destroy();
  sup.kill('SIGTERM');
  await new Promise((resolve) => sup.once('exit', resolve));
  p.remove();
});

test('three upgrades under traffic: zero closes, zero loss, same supervisor, new worker, new build visible', async () => {
  const pids = [(await status()).supervisor.workerPid];
  for (const build of ['b1', 'b2', 'b2']) {
    setEnv({ HOTLINE_BUILD: build });
    const summary = await withTraffic(upgrade);
    assert.equal(summary.outcome, 'committed', JSON.stringify(summary));
    assert.equal(summary.moved, WS_CLIENTS + TCP_CLIENTS);
    assert.equal(summary.failed, 0);
    const s = await status();
    assert.equal(s.supervisor.pid, supPid, 'the supervisor PID never changes');
    assert.equal(s.build, build, 'the new worker runs the new build');
    assert.equal(s.connections, WS_CLIENTS + TCP_CLIENTS);
    assert.ok(!pids.includes(s.supervisor.workerPid), 'a new worker process');
    pids.push(s.supervisor.workerPid);
  }
  await round();
  assertContinuity();
});

for (const [fault, code] of [
  ['ready-timeout', 'HOTLINE_E_UPGRADE_READY_TIMEOUT'],
  ['refuse-ack', 'HOTLINE_E_UPGRADE_REFUSED'],
  ['stall:20', 'HOTLINE_E_UPGRADE_WORKER_EXIT'],
] as const) {
  test(`an upgrade that fails (${fault}) rolls back: ${code}, the old worker keeps every connection`, async () => {
    setEnv({ HOTLINE_BUILD: 'bad', HOTLINE_FAULT: fault });
    const before = await status();
    const summary = await withTraffic(async () => {
      const pending = upgrade();
      if (fault.startsWith('stall')) {
        // kill -9 of the new worker mid-handoff: once it has taken some connections and stopped acknowledging.
        let progress: UpgradeProgress | undefined;
        for (let i = 0; i < 400 && !(progress && progress.phase === 'moving' && progress.moved >= 20); i++) {
          await new Promise((resolve) => setTimeout(resolve, 25));
          progress = (await status()).supervisor.upgrade;
        }
        assert.ok(progress && progress.moved >= 20, `the handoff got under way: ${JSON.stringify(progress)}`);
        process.kill(progress.nextPid, 'SIGKILL');
      }
      return pending;
    });
    assert.equal(summary.outcome, 'aborted');
    assert.equal(summary.error?.code, code);
    const s = await status();
    assert.equal(s.supervisor.workerPid, before.supervisor.workerPid, 'the old worker still serves');
    assert.equal(s.build, before.build);
    assert.equal(s.connections, WS_CLIENTS + TCP_CLIENTS);
    await round();
    assertContinuity();
  });
}

test('a second upgrade while one runs is refused with HOTLINE_E_UPGRADE_IN_PROGRESS', async () => {
  setEnv({ HOTLINE_BUILD: 'b3' });
  const first = upgrade();
  await assert.rejects(
    async () => {
      for (let i = 0; i < 200; i++) {
        const s = await status();
        if (s.supervisor.upgrade) return upgrade();
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      return upgrade();
    },
    (err: Error & { code?: string }) => err.code === 'HOTLINE_E_UPGRADE_IN_PROGRESS',
  );
  assert.equal((await first).outcome, 'committed');
  await round();
  assertContinuity();
});
