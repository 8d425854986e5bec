/**
 * The failure catalogue of issue 2: each way a new version can be broken, tried while clients are sending. In every
 * case the swap rejects with the exact code, the old version keeps serving with its global and per-connection state
 * untouched, no message is lost or reordered, and a good version afterwards still carries the counters on.
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { type ErrorCode, type HostOptions, isHotlineError } from '../../src/index.js';
import { duringTraffic, type Rig, RELEASE, sentTotal, startRig, trafficPlugin, type PluginParts } from './traffic-rig.js';

/** The old version serves, with the counters it had, and the failed attempt is on record. */
async function assertOldVersionIntact(rig: Rig, code: ErrorCode): Promise<void> {
  for (const p of rig.peers) p.verify(['v1']);
  for (const p of rig.peers) {
    const r = await p.ask(`${p.name}-probe`);
    assert.equal(r.tag, 'v1');
    assert.equal(r.seen, p.sent.length, `${p.name}: per-connection state untouched`);
    assert.equal(r.total, sentTotal(rig), 'global state untouched');
  }
  const status = rig.host.status();
  assert.equal(status.plugin?.version, 'v1');
  assert.equal(status.connections, 2, 'no connection was closed');
  const last = status.swaps.at(-1)!;
  assert.equal(last.outcome, 'aborted');
  assert.equal(last.error?.code, code);
  assert.equal(status.versions.at(-1)?.errors, 0, 'the failed attempt is not an error of the serving version');
}

/** A good version after the failure takes over with the counters continuing where v1 left them. */
async function assertRecovers(rig: Rig): Promise<void> {
  rig.plugin.write(trafficPlugin('v2'));
  const record = await rig.host.reload();
  assert.equal(record.outcome, 'switched');
  for (const p of rig.peers) {
    const r = await p.ask(`${p.name}-after`);
    assert.equal(r.tag, 'v2');
    assert.equal(r.seen, p.sent.length);
  }
  assert.equal((await rig.ws.ask('last')).total, sentTotal(rig));
}

/** Break the plugin with `breakIt`, reload during traffic, and check everything the catalogue promises. */
async function catalogueCase(code: ErrorCode, breakIt: (rig: Rig) => void, options: Partial<HostOptions> = {}): Promise<void> {
  const rig = await startRig(options);
  try {
    breakIt(rig);
    const err = await duringTraffic(rig, () => rig.host.reload());
    assert.ok(isHotlineError(err), `expected a HotlineError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    await assertOldVersionIntact(rig, code);
    await assertRecovers(rig);
  } finally {
    await rig.close();
  }
}

const broken = (parts: PluginParts) => (rig: Rig) => rig.plugin.write(trafficPlugin('v2', parts));

test('1. syntax error: HOTLINE_E_BUILD', () =>
  catalogueCase('HOTLINE_E_BUILD', (rig) => rig.plugin.write(trafficPlugin('v2', { top: 'const = ;' }))));

test('2. throws at module top level: HOTLINE_E_PLUGIN_EVAL', () =>
  catalogueCase('HOTLINE_E_PLUGIN_EVAL', broken({ top: "(undefined as unknown as { x: () => void }).x();" })));

test('3. no default export: HOTLINE_E_PLUGIN_NO_DEFAULT', () =>
  catalogueCase('HOTLINE_E_PLUGIN_NO_DEFAULT', (rig) =>
    rig.plugin.write(trafficPlugin('v2').replace('export default definePlugin', 'export const plugin = definePlugin')),
  ));

test('4. default export missing onMessage: HOTLINE_E_PLUGIN_SHAPE', () =>
  catalogueCase('HOTLINE_E_PLUGIN_SHAPE', broken({ omitOnMessage: true })));

test('5. api mismatch: HOTLINE_E_PLUGIN_API', () => catalogueCase('HOTLINE_E_PLUGIN_API', broken({ api: 2 })));

test('6. init throws: HOTLINE_E_INIT', () =>
  catalogueCase('HOTLINE_E_INIT', broken({ init: "() => { throw new Error('no database'); }" })));

test('7. init never settles: HOTLINE_E_INIT_TIMEOUT', () =>
  catalogueCase('HOTLINE_E_INIT_TIMEOUT', broken({ init: '() => new Promise<{ total: number }>(() => {})' }), {
    hookTimeout: 300,
  }));

test('8. check throws: HOTLINE_E_CHECK', () =>
  catalogueCase('HOTLINE_E_CHECK', broken({ check: "async () => { throw new Error('not ready'); }" })));

test('9. migrate throws: HOTLINE_E_MIGRATE', () =>
  catalogueCase('HOTLINE_E_MIGRATE', broken({ migrate: "() => { throw new Error('cannot upgrade'); }" })));

test('10. migrateConnection throws for one connection: HOTLINE_E_MIGRATE_CONNECTION', () =>
  catalogueCase(
    'HOTLINE_E_MIGRATE_CONNECTION',
    broken({
      migrateConnection: `(prev) => {
        const s = prev as { seen: number; transport: string };
        if (s.transport === 'tcp') throw new Error('tcp state unreadable');
        return { seen: s.seen + 1000, transport: s.transport };
      }`,
    }),
  ));

test('11. an old in-flight handler never settles: HOTLINE_E_SWAP_TIMEOUT, other connections continue', async () => {
  const rig = await startRig({ settleTimeout: 300 });
  const release = Symbol.for(RELEASE);
  try {
    // The ws connection is blocked by design: its handler hangs, and its later messages wait behind it.
    rig.ws.send('hang');
    rig.ws.send('ws-queued-1');
    rig.ws.send('ws-queued-2');
    rig.plugin.write(trafficPlugin('v2'));
    const err = await duringTraffic(rig, () => rig.host.reload(), [rig.tcp]);
    assert.ok(isHotlineError(err, 'HOTLINE_E_SWAP_TIMEOUT'), String(err));
    assert.equal(rig.ws.inbox.messages.length, 0, 'the hung connection stayed blocked');
    rig.tcp.verify(['v1']);

    // Releasing the hung handler lets its connection continue, in order, on the old version.
    const fn = (globalThis as Record<symbol, unknown>)[release] as () => void;
    fn();
    await rig.ws.inbox.waitFor(3);
    await assertOldVersionIntact(rig, 'HOTLINE_E_SWAP_TIMEOUT');
    await assertRecovers(rig);
  } finally {
    delete (globalThis as Record<symbol, unknown>)[release];
    await rig.close();
  }
});

test('12. entry file deleted: HOTLINE_E_ENTRY_MISSING', () =>
  catalogueCase('HOTLINE_E_ENTRY_MISSING', (rig) => rmSync(rig.plugin.entry)));

test('13. entry file half-written: HOTLINE_E_BUILD', () =>
  catalogueCase('HOTLINE_E_BUILD', (rig) => {
    // What an editor or a copy leaves on disk mid-write: the first part of a good file.
    const good = trafficPlugin('v2');
    writeFileSync(rig.plugin.entry, good.slice(0, Math.floor(good.length * 0.6)));
  }));
