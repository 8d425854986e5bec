/**
 * Last known good under `hotline start` (issue 11, inline mode): a new build that kills its worker during its
 * probation (a crash on its first message, then a busy loop the watchdog kills) is not restarted into a crash loop:
 * the supervisor starts the next worker on the previous build, which serves again, and status says so
 * (HOTLINE_E_WORKER_LKG, the build rejected, the build known good). Real bin, real processes, real sockets.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { adminStatus, HotlineProcess, runHotline } from '../e2e/hotline-process.js';
import { wsClient } from '../helpers/clients.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { until } from '../helpers/until.js';

interface Status {
  plugin: { version: string; hash: string };
  supervisor: {
    workerPid: number;
    restarts: number;
    lastKnownGood: {
      good?: { hash: string; how: string };
      probation?: { hash: string };
      rejected: string[];
      fallbacks: Array<{ code: string; from: string; to: string; cause: string }>;
    };
  };
}

/** An echo plugin tagged with its version; `onMessage` may do something else first. */
function plugin(version: string, first = ''): string {
  return `
import { definePlugin } from 'hotline';
import { execSync } from 'node:child_process';
void execSync;
export default definePlugin({
  name: 'lkg', version: '${version}', api: 1,
  init: () => ({}),
  migrate: () => ({}),
  onMessage(conn, data) {
    ${first}
    conn.send('${version}:' + String(data));
  },
});
`;
}

/** The one reply of a fresh client to `data`. */
async function ask(url: string, data: string): Promise<string> {
  const c = await wsClient(url);
  c.send(data);
  const r = await c.inbox.next(15_000);
  c.ws.close();
  return r;
}

/** Status once the supervisor has fallen back `n` times and its restarted worker answers. */
async function fellBack(admin: string, cwd: string, n: number): Promise<Status> {
  let s: Status | undefined;
  await until(
    async () => {
      const r = await runHotline(['status', '--admin', admin, '--json'], cwd);
      if (r.code !== 0) return false;
      s = JSON.parse(r.stdout) as Status;
      return s.supervisor.lastKnownGood.fallbacks.length === n;
    },
    `fallback ${n} to the last known good build`,
    30_000,
  );
  return s!;
}

test('a new build that crashes, then one that hangs, during probation: each time the worker restarts on the previous build', { timeout: 90_000 }, async (t) => {
  const p = pluginDir(plugin('1.0.0'));
  const admin = path.join(p.dir, 'admin.sock');
  const { proc, ready } = await HotlineProcess.start(['start', p.entry, '--port', '0', '--admin', admin, '--watchdog-timeout', '600'], p.dir);
  try {
    assert.equal(await ask(ready.url, 'a'), '1.0.0:a');
    const v1 = await adminStatus<Status>(admin, p.dir);
    assert.equal(v1.supervisor.lastKnownGood.good?.hash, v1.plugin.hash, 'the first build is known good at once');
    assert.equal(v1.supervisor.lastKnownGood.good?.how, 'first');

    // 2.0.0 loads and checks fine, and kills its worker on its first message (SIGKILL of itself: nothing to catch).
    p.write(plugin('2.0.0', "execSync('kill -9 ' + process.pid);"));
    const reload = await runHotline(['reload', '--admin', admin], p.dir);
    assert.equal(reload.code, 0, reload.stderr);
    const v2 = await adminStatus<Status>(admin, p.dir);
    assert.equal(v2.plugin.version, '2.0.0');
    assert.equal(v2.supervisor.lastKnownGood.probation?.hash, v2.plugin.hash, 'the new build is on probation');

    const crashedAt = Date.now();
    const victim = await wsClient(ready.url);
    victim.send('b');
    assert.equal((await victim.closed).code, 1006, 'its worker died');
    const after = await fellBack(admin, p.dir, 1);
    const crashMs = Date.now() - crashedAt;
    assert.equal(after.plugin.version, '1.0.0', 'the restarted worker serves the previous build, not the one on disk');
    assert.equal(after.plugin.hash, v1.plugin.hash);
    assert.deepEqual(after.supervisor.lastKnownGood.fallbacks[0], { ...after.supervisor.lastKnownGood.fallbacks[0], code: 'HOTLINE_E_WORKER_LKG', from: v2.plugin.hash, to: v1.plugin.hash, cause: 'HOTLINE_E_WORKER_EXIT' });
    assert.deepEqual(after.supervisor.lastKnownGood.rejected, [v2.plugin.hash]);
    assert.equal(after.supervisor.lastKnownGood.probation, undefined);
    assert.equal(await ask(ready.url, 'c'), '1.0.0:c', 'served again');
    assert.ok(proc.logs.some((r) => r.code === 'HOTLINE_E_WORKER_LKG'), 'logged with its code');
    const text = await runHotline(['status', '--admin', admin], p.dir);
    assert.match(text.stdout, /^builds {6}last known good [0-9a-f]{12} \(first\); 1 restart\(s\) on it \(latest: HOTLINE_E_WORKER_LKG, [0-9a-f]{12} -> [0-9a-f]{12} after HOTLINE_E_WORKER_EXIT\)$/m);

    // 3.0.0 blocks its event loop on its first message: the watchdog kills the worker, and 1.0.0 serves again.
    p.write(plugin('3.0.0', 'while (true) {}'));
    assert.equal((await runHotline(['reload', '--admin', admin], p.dir)).code, 0);
    const v3 = await adminStatus<Status>(admin, p.dir);
    assert.equal(v3.plugin.version, '3.0.0');
    const hungAt = Date.now();
    const spinner = await wsClient(ready.url);
    spinner.send('d');
    await spinner.closed;
    const hung = await fellBack(admin, p.dir, 2);
    const hangMs = Date.now() - hungAt;
    assert.equal(hung.plugin.hash, v1.plugin.hash);
    assert.equal(hung.supervisor.lastKnownGood.fallbacks[1]?.cause, 'HOTLINE_E_WORKER_HUNG');
    assert.equal(hung.supervisor.lastKnownGood.fallbacks[1]?.from, v3.plugin.hash);
    assert.equal(hung.supervisor.restarts, 2);
    assert.equal(await ask(ready.url, 'e'), '1.0.0:e');
    t.diagnostic(`crash on first message → served by the last known good build: ${crashMs} ms; hang → same: ${hangMs} ms (watchdogTimeout 600)`);
  } finally {
    proc.kill('SIGTERM');
    await proc.exited;
    p.remove();
  }
});
