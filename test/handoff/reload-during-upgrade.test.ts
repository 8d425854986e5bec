/**
 * A reload fired during a real `hotline upgrade` under traffic (issue 10, fault 6): a real supervisor, real workers,
 * WebSocket and TCP clients streaming numbered messages. The old worker's export is held open by one handler that
 * waits for a file, so the SIGHUP lands while the connections are moving. Before the operation lock, that reload
 * swapped the old worker and resumed its dispatch mid-export, so queued messages ran in both workers.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { adminRequest } from '../../src/admin/admin-client.js';
import { isHotlineError } from '../../src/errors.js';
import type { LockState } from '../../src/lock/operation-lock.js';
import type { UpgradeSummary } from '../../src/handoff/upgrade.js';
import { NumberedTraffic } from '../e2e/numbered-traffic.js';
import { wsClient } from '../helpers/clients.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { type SupervisorFixture, startSupervisor } from './supervisor-process.js';

/** The numbered-traffic plugin (numbered-traffic.ts), plus `hold` (waits for a file) and an init that logs its pid. */
function holdingPlugin(dir: string, gen: number): string {
  return `
import { appendFileSync, existsSync } from 'node:fs';
import { definePlugin } from 'hotline';
const DIR = ${JSON.stringify(dir)};
export default definePlugin<{ total: number }, { seen: number }>({
  name: 'continuity', version: '1.0.${gen}', api: 1,
  init: () => { appendFileSync(DIR + '/inits', process.pid + '\\n'); return { total: 0 }; },
  migrate: (prev) => ({ total: (prev.state as { total: number }).total }),
  migrateConnection: (prev) => ({ seen: (prev as { seen: number }).seen }),
  onOpen(conn) { conn.state = { seen: 0 }; },
  async onMessage(conn, data, ctx) {
    if (data === 'hold') {
      appendFileSync(DIR + '/holding', '1');
      for (let i = 0; i < 6000 && !existsSync(DIR + '/release'); i++) await new Promise((r) => setTimeout(r, 10));
      conn.send('held');
      return;
    }
    ctx.state.total++;
    conn.state.seen++;
    conn.send(${gen} + ':' + conn.state.seen + ':' + ctx.state.total + ':' + String(data));
  },
});
`;
}

interface Status {
  lock: LockState;
  supervisor: { workerPid: number; upgrade?: { phase: string } };
}

const p = pluginDir('');
p.write(holdingPlugin(p.dir, 1));
const admin = path.join(p.dir, 'admin.sock');
const envFile = path.join(p.dir, 'worker.env');
writeFileSync(envFile, '');
let sup: SupervisorFixture | undefined;
const traffic = new NumberedTraffic({ window: 4 });

after(async () => {
  traffic.closeAll();
  sup?.child.kill('SIGTERM');
  await sup?.exited;
  p.remove();
});

async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, what: string, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

test('a SIGHUP reload and an admin reload during a real upgrade under traffic: refused by name, zero lost or duplicated', async () => {
  // The held handler must outlive the test's steps: abandoned at the default hangTimeout (2 s on a loaded machine), it
  // ends the export early and the status polls below meet a leaving worker.
  sup = await startSupervisor({ entry: p.entry, admin, envFile, readyTimeoutMs: 30_000, tuning: { hangTimeout: 60_000 } });
  const [wsAddr, tcpAddr] = sup.addresses;
  await traffic.addWs(`ws://127.0.0.1:${wsAddr!.port}/`, 40);
  await traffic.addTcp(tcpAddr!.port, 10);
  traffic.start();
  await traffic.progress(500, 30_000);
  const status = async () => (await adminRequest(admin, 'status')) as Status;
  const oldWorker = (await status()).supervisor.workerPid;

  // One handler in flight that the export must wait for: the upgrade stays in its export while it runs.
  const holder = await wsClient(`ws://127.0.0.1:${wsAddr!.port}/`);
  holder.send('hold');
  await until(async () => existsSync(path.join(p.dir, 'holding')), Boolean, 'the held handler');
  const upgrading = adminRequest(admin, 'upgrade', 60_000) as Promise<UpgradeSummary>;
  await until(status, (s) => s.lock.phase === 'held' && s.lock.holder === 'export', 'the old worker to start exporting');

  // A changed plugin and a SIGHUP: without the lock, the old worker swapped to generation 2 in the middle of the export.
  p.write(holdingPlugin(p.dir, 2));
  process.kill(sup.pid, 'SIGHUP');
  const refused = await until(status, (s) => s.lock.refused >= 1, 'the SIGHUP reload to be refused');
  assert.equal(refused.lock.phase === 'held' && refused.lock.holder, 'export', 'the export still holds the lock');
  await assert.rejects(adminRequest(admin, 'reload'), (err: unknown) => isHotlineError(err, 'HOTLINE_E_UPGRADE_IN_PROGRESS'));

  writeFileSync(path.join(p.dir, 'release'), '');
  const summary = await upgrading;
  assert.equal(summary.outcome, 'committed', JSON.stringify(summary));
  await holder.inbox.waitFor(1, 15_000);
  assert.equal(holder.inbox.messages[0], 'held');

  await traffic.progress(500, 30_000);
  traffic.stop();
  await traffic.drained(30_000);
  const c = traffic.counts();
  assert.deepEqual(
    { lost: c.lost, duplicated: c.duplicated, reordered: c.reordered, closed: c.closed, connStateBreaks: c.connStateBreaks, globalStateBreaks: c.globalStateBreaks, generationRegressions: c.generationRegressions, malformed: c.malformed },
    { lost: 0, duplicated: 0, reordered: 0, closed: 0, connStateBreaks: 0, globalStateBreaks: 0, generationRegressions: 0, malformed: 0 },
  );
  assert.equal(c.generations, 1, 'only generation 1 answered: the refused reload never swapped');
  const inits = readFileSync(path.join(p.dir, 'inits'), 'utf8').trim().split('\n').map(Number);
  const now = (await status()).supervisor.workerPid;
  assert.deepEqual(inits, [oldWorker, now], 'init ran once per worker: no swap in the old worker');
  holder.ws.terminate();
});
