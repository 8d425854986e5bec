/**
 * The checkpointer's rules with a scripted file system and clock: a refused write is HOTLINE_E_STATE_WRITE, logged
 * once per run of the failure, and recovers; a deferred worker (an upgrade's new one) neither restores nor writes
 * until it is activated; a handed-over one (an upgrade's old one) never writes again; nothing is written while the
 * connections move.
 */
import assert from 'node:assert/strict';
import nodeFs from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { CheckpointFile, type CheckpointFs } from '../../src/state/checkpoint-file.js';
import { type CheckpointClock, Checkpointer, type StateSnapshot } from '../../src/state/checkpointer.js';

function rig(fs: CheckpointFs = nodeFs, deferred = false) {
  const dir = mkdtempSync(path.join(tmpdir(), 'hotline-ckpt-'));
  const lines: Array<{ level: number; code?: string }> = [];
  const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as { level: number; code?: string }) });
  let tick: (() => void) | undefined;
  const clock: CheckpointClock = { setInterval: (fn) => (tick = fn), clearInterval: () => (tick = undefined), now: () => 1 };
  const snap: StateSnapshot = { plugin: 'p', version: '1', hash: 'h', state: { n: 0 } };
  let moving = false;
  const options = { dir, interval: 1000, maxBytes: 1 << 20 };
  const source = { current: () => snap, moving: () => moving };
  const cp = new Checkpointer(options, source, log, deferred, clock, new CheckpointFile(dir, options.maxBytes, fs));
  cp.start();
  return {
    cp,
    snap,
    lines,
    tick: () => tick?.(),
    ticking: () => tick !== undefined,
    setMoving: (m: boolean) => (moving = m),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

test('a refused write is HOTLINE_E_STATE_WRITE, logged once while it repeats, and checkpoints resume after it', () => {
  let full = true;
  const fs: CheckpointFs = {
    ...nodeFs,
    writeFileSync: ((...a: Parameters<typeof nodeFs.writeFileSync>) => {
      if (full) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      return nodeFs.writeFileSync(...a);
    }) as typeof nodeFs.writeFileSync,
  };
  const r = rig(fs);
  try {
    for (let i = 1; i <= 3; i++) {
      (r.snap.state as { n: number }).n = i;
      r.tick();
    }
    assert.equal(r.cp.status.failures, 3);
    assert.equal(r.cp.status.lastError?.code, 'HOTLINE_E_STATE_WRITE');
    assert.equal(r.lines.filter((l) => l.code === 'HOTLINE_E_STATE_WRITE').length, 1, 'logged once');
    full = false;
    r.tick();
    assert.equal(r.cp.status.writes, 1);
    assert.ok(r.lines.some((l) => /written again/.test(JSON.stringify(l))));
  } finally {
    r.remove();
  }
});

test('deferred: no restore, no write until activate(); handed over: no write ever; moving: ticks skipped', () => {
  const r = rig(nodeFs, true);
  try {
    assert.equal(r.cp.restore('p'), undefined);
    r.tick();
    assert.equal(r.cp.status.writes, 0, 'a deferred worker writes nothing');
    r.cp.activate();
    assert.equal(r.cp.status.last?.trigger, 'upgrade');
    (r.snap.state as { n: number }).n = 1;
    r.setMoving(true);
    r.tick();
    assert.equal(r.cp.status.writes, 1, 'nothing while connections move');
    r.setMoving(false);
    r.cp.handOver();
    assert.equal(r.ticking(), false, 'the interval stopped');
    r.cp.close();
    assert.equal(r.cp.status.writes, 1, 'not even at close');
    assert.equal(r.cp.phase, 'closed');
  } finally {
    r.remove();
  }
});
