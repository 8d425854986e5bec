/**
 * `hotline reload` of an unchanged plugin, `--force`, `--json`, `--version` and `--help` through the real bin and a
 * real supervised `hotline start` (issue 10, faults 8 and 9).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { HostStatus } from '../../src/host/host.js';
import type { SwapRecord } from '../../src/swap/history.js';
import { HotlineProcess, runHotline } from '../e2e/hotline-process.js';
import { counterPlugin, pluginDir } from '../helpers/plugin-dir.js';

const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

test('--version, -v and version print the package version; --help lists --force, --json on reload/rollback, --env-file', async () => {
  for (const flag of ['--version', '-v', 'version']) {
    const r = await runHotline([flag], process.cwd());
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `hotline ${version}\n`);
  }
  const help = await runHotline(['--help'], process.cwd());
  assert.match(help.stdout, /hotline reload +\[--admin PATH\] \[--json\] \[--force\]/);
  assert.match(help.stdout, /hotline rollback \[--admin PATH\] \[--json\]/);
  assert.match(help.stdout, /--env-file PATH/);
  const misplaced = await runHotline(['status', '--force'], process.cwd());
  assert.equal(misplaced.code, 1);
  assert.match(misplaced.stderr, /HOTLINE_E_CONFIG: --force belongs to `hotline reload` only/);
});

test('reload with nothing changed says unchanged and keeps the running version; --force loads it again', async () => {
  const p = pluginDir(counterPlugin('v1'));
  const admin = path.join(p.dir, 'admin.sock');
  const { proc } = await HotlineProcess.start(['start', p.entry, '--port', '0', '--admin', admin], p.dir);
  try {
    const status = async () => JSON.parse((await runHotline(['status', '--admin', admin, '--json'], p.dir)).stdout) as HostStatus;
    const before = await status();

    const same = await runHotline(['reload', '--admin', admin], p.dir);
    assert.equal(same.code, 0, same.stderr);
    assert.equal(same.stdout, `unchanged: still serving counter@v1 (hash ${before.plugin!.hash}); --force loads it again\n`);
    const json = await runHotline(['reload', '--admin', admin, '--json'], p.dir);
    const record = JSON.parse(json.stdout) as SwapRecord;
    assert.deepEqual([record.outcome, record.to, record.hash], ['unchanged', 'counter@v1', before.plugin!.hash]);
    const kept = await status();
    assert.equal(kept.plugin!.seq, before.plugin!.seq, 'the running version was kept');
    assert.equal(kept.versions.length, 1);

    const forced = await runHotline(['reload', '--admin', admin, '--force'], p.dir);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stdout, /^reloaded: now serving counter@v1 \(hash [0-9a-f]+, [\d.]+ ms\)\n$/);
    const after = await status();
    assert.equal(after.plugin!.seq, before.plugin!.seq + 1, '--force made a new version of the same build');
    assert.equal(after.plugin!.hash, before.plugin!.hash);
    assert.deepEqual(
      after.swaps.map((r) => [r.trigger, r.outcome]),
      [
        ['start', 'switched'],
        ['admin', 'unchanged'],
        ['admin', 'unchanged'],
        ['admin', 'switched'],
      ],
    );
  } finally {
    proc.kill('SIGKILL');
    await proc.exited;
    p.remove();
  }
});
