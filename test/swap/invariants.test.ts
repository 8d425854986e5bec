/**
 * Swap invariants: one swap at a time, bursts coalesce, rollback migrates down, probation rolls a failing version
 * back by itself, and the history records every attempt.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createHost, type HotlineError, isHotlineError, type SwapPhase, type SwapRecord } from '../../src/index.js';
import { wsClient } from '../helpers/clients.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';
import { startRig, trafficPlugin } from './traffic-rig.js';

const PHASES: SwapPhase[] = ['building', 'loading', 'preparing', 'suspending', 'migrating', 'switching', 'disposing'];

/** A check() that takes a little while, so concurrent requests really overlap a running swap. */
const SLOW_CHECK = 'async (ctx) => { await new Promise<void>((r) => { ctx.setTimeout(r, 30); }); }';

test('one swap at a time: concurrent reload and rollback calls all resolve, in order, never interleaved', async () => {
  const rig = await startRig({}, trafficPlugin('v1', { check: SLOW_CHECK }));
  const phases: SwapPhase[] = [];
  rig.host.on('phase', (phase) => phases.push(phase));
  try {
    rig.plugin.write(trafficPlugin('v2', { check: SLOW_CHECK }));
    await rig.host.reload();
    phases.length = 0;
    rig.plugin.write(trafficPlugin('v3', { check: SLOW_CHECK }));
    rig.ws.start();
    const results = await Promise.all([rig.host.reload(), rig.host.rollback(), rig.host.reload()]);
    await rig.ws.stop();

    assert.deepEqual(results.map((r) => [r.trigger, r.outcome]), [['reload', 'switched'], ['rollback', 'switched'], ['reload', 'switched']]);
    assert.deepEqual(results.map((r) => r.to), ['traffic@v3', 'traffic@v2', 'traffic@v3']);
    assert.deepEqual(phases, [...PHASES, ...PHASES, ...PHASES], 'each swap ran every phase before the next began');
    const swaps = rig.host.status().swaps.slice(-3);
    assert.deepEqual(swaps.map((s) => s.id), results.map((r) => r.id));
    for (let i = 1; i < swaps.length; i++) {
      const prevEnd = Date.parse(swaps[i - 1]!.startedAt) + swaps[i - 1]!.totalMs;
      // startedAt has millisecond resolution: allow the rounding.
      assert.ok(Date.parse(swaps[i]!.startedAt) >= Math.floor(prevEnd) - 1, `swap ${swaps[i]!.id} started before ${swaps[i - 1]!.id} ended`);
    }
    rig.ws.verify(['v1', 'v2', 'v3']);
  } finally {
    await rig.close();
  }
});

test('a burst of reload requests coalesces into one swap after the running one', async () => {
  const rig = await startRig({}, trafficPlugin('v1', { check: SLOW_CHECK }));
  try {
    rig.plugin.write(trafficPlugin('v2', { check: SLOW_CHECK }));
    const before = rig.host.status().swaps.length;
    const burst: Array<Promise<SwapRecord>> = [];
    for (let i = 0; i < 10; i++) burst.push(rig.host.reload());
    const records = await Promise.all(burst);
    const ids = new Set(records.map((r) => r.id));
    assert.equal(ids.size, 2, 'the first request runs, the other nine share one queued swap');
    assert.ok(records.slice(1).every((r) => r.id === records[1]!.id));
    assert.equal(rig.host.status().swaps.length - before, 2);
    assert.equal((await rig.ws.ask('x')).tag, 'v2');
  } finally {
    await rig.close();
  }
});

/** v1 keeps `{ total }`; v2 keeps `{ count, schema: 2 }`. Each migrates from the other: up and down. */
function schemaPlugin(tag: 'v1' | 'v2'): string {
  const migrate =
    tag === 'v1'
      ? `(prev) => { const s = prev.state as { count?: number; total?: number }; return { total: prev.version === 'v2' ? s.count! : s.total!, from: prev.version }; }`
      : `(prev) => { const s = prev.state as { total: number }; return { count: s.total, schema: 2, from: prev.version }; }`;
  const bump = tag === 'v1' ? 'ctx.state.total++' : 'ctx.state.count++';
  const read = tag === 'v1' ? 'ctx.state.total' : 'ctx.state.count';
  return `
import { definePlugin } from 'hotline';
type S = { total: number; count: number; from?: string };
export default definePlugin<S>({
  name: 'schema', version: '${tag}', api: 1,
  init: () => ({ total: 0 } as S),
  migrate: (${migrate}) as never,
  onMessage(conn, _data, ctx) { ${bump}; conn.send('${tag}:' + ${read} + ':' + (ctx.state.from ?? '-')); },
});
`;
}

test('rollback() swaps back to the previous build, migrating the state down; HOTLINE_E_NO_PREVIOUS without one', async () => {
  const p = pluginDir(schemaPlugin('v1'));
  const host = await createHost({ plugin: p.entry, logger: quietLogger, probation: false });
  try {
    await assert.rejects(host.rollback(), (err: unknown) => isHotlineError(err, 'HOTLINE_E_NO_PREVIOUS'));
    assert.equal(host.status().swaps.at(-1)?.error?.code, 'HOTLINE_E_NO_PREVIOUS');
    const ws = await wsClient(host.addresses()[0]!.url);
    ws.send('a');
    ws.send('b');
    await ws.inbox.waitFor(2);
    p.write(schemaPlugin('v2'));
    await host.reload();
    ws.send('c');
    assert.equal(await ws.inbox.next(), 'v2:3:v1');

    const record = await host.rollback();
    assert.equal(record.trigger, 'rollback');
    assert.equal(record.to, 'schema@v1');
    ws.send('d');
    assert.equal(await ws.inbox.next(), 'v1:4:v2', 'v1 migrated down from v2 state, count carried');
    assert.equal(host.status().plugin?.version, 'v1');
    // The disk still holds v2: rollback used the previous build, not the file.
    ws.ws.close();
  } finally {
    await host.close();
    p.remove();
  }
});

test('probation: a new version that fails most messages is rolled back automatically', async () => {
  const good = trafficPlugin('v1');
  // v2 throws on every message except each fifth.
  const bad = trafficPlugin('v2').replace('ctx.state.total++;', "ctx.state.total++; if (ctx.state.total % 5 !== 0) throw new Error('v2 is broken');");
  const rig = await startRig({ probation: { window: 10_000, minErrors: 5, maxErrorRate: 0.5 } }, good);
  try {
    for (let i = 0; i < 3; i++) await rig.ws.ask(`warm-${i}`);
    const failed = new Promise<HotlineError>((resolve) => rig.host.once('probation-failed', (err) => resolve(err)));
    const rolledBack = new Promise<SwapRecord>((resolve) =>
      rig.host.on('swap', (record) => {
        if (record.trigger === 'probation') resolve(record);
      }),
    );
    rig.plugin.write(bad);
    await rig.host.reload();
    assert.equal(rig.host.status().plugin?.version, 'v2');

    // Traffic on tcp until the host gives up on v2; replies of failed messages never come, so count sends only.
    let sent = 0;
    let done = false;
    void rolledBack.then(() => (done = true));
    while (!done && sent < 500) {
      rig.tcp.send(`t-${sent++}`);
      await new Promise((r) => setTimeout(r, 2));
    }
    const err = await failed;
    assert.equal(err.code, 'HOTLINE_E_PROBATION');
    const record = await rolledBack;
    assert.equal(record.outcome, 'switched');
    assert.equal(record.to, 'traffic@v1');
    assert.equal(rig.host.status().plugin?.version, 'v1');
    const v2 = rig.host.status().versions.find((v) => v.version === 'v2')!;
    assert.ok(v2.errors >= 5, `v2 errors: ${v2.errors}`);
    const r = await rig.ws.ask('after');
    assert.equal(r.tag, 'v1');
    assert.equal(rig.host.status().connections, 2);
  } finally {
    await rig.close();
  }
});

test('the swap history records trigger, phase durations, outcome and error code', async () => {
  const rig = await startRig();
  try {
    rig.plugin.write(trafficPlugin('v2'));
    await rig.host.reload('signal');
    rig.plugin.write(trafficPlugin('v3', { check: "() => { throw new Error('nope'); }" }));
    await assert.rejects(rig.host.reload('admin'));
    const [start, ok, bad] = rig.host.status().swaps;

    assert.equal(start!.trigger, 'start');
    assert.equal(start!.from, undefined);
    assert.equal(start!.to, 'traffic@v1');

    assert.equal(ok!.trigger, 'signal');
    assert.equal(ok!.outcome, 'switched');
    assert.equal(ok!.from, 'traffic@v1');
    assert.equal(ok!.to, 'traffic@v2');
    assert.match(ok!.hash!, /^[0-9a-f]{12}$/);
    assert.deepEqual(Object.keys(ok!.durations), PHASES);
    assert.ok(Object.values(ok!.durations).every((ms) => typeof ms === 'number' && ms >= 0));
    assert.ok(ok!.totalMs >= Math.max(...Object.values(ok!.durations)));
    assert.equal(ok!.error, undefined);

    assert.equal(bad!.trigger, 'admin');
    assert.equal(bad!.outcome, 'aborted');
    assert.equal(bad!.phase, 'preparing', 'the phase the swap failed in');
    assert.deepEqual(Object.keys(bad!.durations), ['building', 'loading', 'preparing']);
    assert.equal(bad!.error?.code, 'HOTLINE_E_CHECK');
    assert.match(bad!.error!.message, /nope/);
  } finally {
    await rig.close();
  }
});
