/**
 * esbuild bundles in a helper process (`esbuild --service=…`), a child of the host in the host's process group.
 * `systemctl reload` (or any SIGHUP to the whole unit, or a terminal's) killed it, and from then on every reload failed
 * with HOTLINE_E_BUILD "The service is no longer running". The bundler must notice the service is gone, start a new
 * one and build again.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import * as esbuild from 'esbuild';
import { createBundler } from '../../src/build/bundler.js';
import { createHost } from '../../src/index.js';
import { HotlineProcess, runHotline } from '../e2e/hotline-process.js';
import { CLIENT_SCRIPT_PATH, createStaticServer } from '../../src/static/static-server.js';
import { counterPlugin, pluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';
import { until } from '../helpers/until.js';

/** Every live process: its parent and its command line. */
function processTable(): Array<{ pid: number; ppid: number; argv: string[] }> {
  const out: Array<{ pid: number; ppid: number; argv: string[] }> = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      // pid (comm) state ppid …: comm may hold spaces, so read after its closing parenthesis.
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (state === 'Z') continue;
      out.push({ pid: Number(d), ppid: Number(ppid), argv: readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0') });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** `root` and every live process below it. */
function tree(root: number): number[] {
  const table = processTable();
  const pids = [root];
  for (let i = 0; i < pids.length; i++) for (const p of table) if (p.ppid === pids[i]) pids.push(p.pid);
  return pids;
}

const isEsbuildService = (argv: string[]) => argv.includes(`--service=${esbuild.version}`);

/** Live esbuild services of the version hotline uses (tsx has its own) that are children of `parent`. */
function esbuildServices(parent = process.pid): number[] {
  return processTable()
    .filter((p) => p.ppid === parent && isEsbuildService(p.argv))
    .map((p) => p.pid);
}

/** SIGHUP every esbuild service of this process, as a signal to the whole process group does; wait until gone. */
async function hangUpEsbuild(): Promise<number[]> {
  const services = esbuildServices();
  assert.ok(services.length > 0, 'an esbuild service runs after a build');
  for (const pid of services) process.kill(pid, 'SIGHUP');
  await until(() => esbuildServices().every((p) => !services.includes(p)), 'the esbuild service to die');
  return services;
}

test('the bundler builds again after its esbuild service process was killed', async () => {
  const p = pluginDir(counterPlugin('v1'));
  const bundler = createBundler(p.entry);
  try {
    const first = await bundler.build();
    const killed = await hangUpEsbuild();
    p.write(counterPlugin('v2'));
    const second = await bundler.build();
    assert.notEqual(second.hash, first.hash);
    assert.match(second.code, /v2/);
    const now = esbuildServices();
    assert.ok(now.length > 0 && now.every((pid) => !killed.includes(pid)), 'a new esbuild service');
  } finally {
    await bundler.dispose();
    p.remove();
  }
});

test('a reload after the esbuild service was killed switches to the new version', async () => {
  const p = pluginDir(counterPlugin('v1'));
  const host = await createHost({ plugin: p.entry, logger: quietLogger, watch: false });
  try {
    await hangUpEsbuild();
    p.write(counterPlugin('v2'));
    const record = await host.reload();
    assert.equal(record.outcome, 'switched');
    assert.equal(host.status().plugin?.version, 'v2');
  } finally {
    await host.close();
    p.remove();
  }
});

test("--static's browser client is bundled after the esbuild service was killed", async () => {
  const p = pluginDir(counterPlugin('v1'));
  const bundler = createBundler(p.entry);
  const dir = mkdtempSync(path.join(tmpdir(), 'hotline-static-'));
  const server = createStaticServer(dir);
  try {
    await bundler.build(); // the service runs
    await hangUpEsbuild();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}${CLIENT_SCRIPT_PATH}`);
    assert.equal(res.status, 200, await res.clone().text());
    assert.match(await res.text(), /hotline/);
  } finally {
    server.close();
    await bundler.dispose();
    rmSync(dir, { recursive: true, force: true });
    p.remove();
  }
});

test('hotline start: SIGHUP to every process of the unit (systemctl kill -s HUP) kills esbuild; that reload and the next one work', { timeout: 60_000 }, async () => {
  const p = pluginDir(counterPlugin('v1'));
  const admin = path.join(p.dir, 'admin.sock');
  const { proc } = await HotlineProcess.start(['start', p.entry, '--port', '0', '--admin', admin], p.dir, 20_000, { detached: true });
  try {
    const esbuildOf = () => processTable().filter((q) => isEsbuildService(q.argv) && tree(proc.child.pid!).includes(q.pid)).map((q) => q.pid);
    const before = esbuildOf();
    assert.equal(before.length, 1, 'the worker bundles through one esbuild service');
    p.write(counterPlugin('v2'));
    const from = proc.logs.length;
    for (const pid of tree(proc.child.pid!)) process.kill(pid, 'SIGHUP');
    await proc.waitForSwap('counter@v2', from);
    await until(() => !esbuildOf().includes(before[0]!), 'the old esbuild service gone');
    p.write(counterPlugin('v3'));
    const reload = await runHotline(['reload', '--admin', admin], p.dir);
    assert.equal(reload.code, 0, reload.stderr);
    assert.match(reload.stdout, /now serving counter@v3/);
    assert.equal(proc.logs.filter((r) => r.code === 'HOTLINE_E_BUILD').length, 0, 'no build failed');
  } finally {
    proc.kill('SIGKILL');
    await proc.exited;
    p.remove();
  }
});
