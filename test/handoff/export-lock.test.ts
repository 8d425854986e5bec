/**
 * The old and new worker's sides of an upgrade against the host's operation lock, in one process with real sockets
 * (issue 10, fault 6 and the "state migration written twice" note): an export never interleaves with a swap, its wait
 * honours its settleTimeout, a reload during it is refused by name and cannot lift its suspension, and the adoption's
 * migrate is bounded by hookTimeout like a swap's.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isHotlineError } from '../../src/errors.js';
import { ConnectionAdopter } from '../../src/handoff/connection-adopt.js';
import { ConnectionExporter } from '../../src/handoff/connection-export.js';
import { createHost } from '../../src/index.js';
import { counterPlugin, pluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';
import { RELEASE, parseReply, startRig, trafficPlugin } from '../swap/traffic-rig.js';
import { until as pollUntil } from '../helpers/until.js';

const release = () => (globalThis as Record<symbol, () => void>)[Symbol.for(RELEASE)]!();
const sink = { send: () => undefined };

/** The shared poll (helpers/until.ts), with these tests' 15 s default. */
const until = (cond: () => boolean, what: string, timeoutMs = 15_000): Promise<void> => pollUntil(cond, what, timeoutMs);

test('an export during a swap waits at most its settleTimeout, refuses by name, and leaves the swap suspended', async () => {
  const rig = await startRig({ settleTimeout: 60_000 });
  try {
    const d = rig.host.handoffPort().dispatcher;
    rig.ws.send('hang');
    await until(() => d.inflight === 1, 'the hung handler');
    rig.plugin.write(trafficPlugin('v2'));
    const swap = rig.host.reload();
    await until(() => rig.host.status().phase === 'suspending', 'the swap to suspend');

    const exporter = new ConnectionExporter(rig.host.handoffPort());
    await assert.rejects(exporter.export(sink, 200), (err: unknown) => isHotlineError(err, 'HOTLINE_E_OPERATION_TIMEOUT') && /swap/.test(err.message));
    assert.equal(rig.host.status().phase, 'suspending', 'the swap is still waiting for its handler');
    assert.deepEqual(d.suspensions, ['swap'], "the export's failure did not lift the swap's suspension");

    // Sent while the swap is suspended: it must be answered by the new version, after the switch, not by the old one.
    rig.tcp.send('after-export');
    release();
    const record = await swap;
    assert.equal(record.outcome, 'switched');
    await rig.tcp.inbox.waitFor(1, 15_000);
    assert.equal(parseReply(rig.tcp.inbox.messages[0]!).tag, 'v2');
  } finally {
    await rig.close();
  }
});

test("an export's wait for in-flight handlers honours its settleTimeout and then lets go of dispatch and the lock", async () => {
  const rig = await startRig();
  try {
    const port = rig.host.handoffPort();
    rig.ws.send('hang');
    await until(() => port.dispatcher.inflight === 1, 'the hung handler');
    const exporter = new ConnectionExporter(port);
    await assert.rejects(exporter.export(sink, 200), (err: unknown) => isHotlineError(err, 'HOTLINE_E_SWAP_TIMEOUT'));
    assert.equal(port.dispatcher.suspended, false);
    assert.equal(port.lock.holder, undefined);
    // An abort after the failed export (what the supervisor sends next) releases nothing twice.
    exporter.resume();
    assert.equal((await rig.tcp.ask('still-served')).tag, 'v1');
    release();
  } finally {
    await rig.close();
  }
});

test('a reload during an export is refused with HOTLINE_E_UPGRADE_IN_PROGRESS and cannot resume dispatch', async () => {
  const rig = await startRig();
  try {
    const port = rig.host.handoffPort();
    const exporter = new ConnectionExporter(port);
    const counts = await exporter.export(sink, 5_000);
    assert.equal(counts.moved, 2);
    assert.equal(rig.host.status().lock.phase, 'held');

    rig.plugin.write(trafficPlugin('v2'));
    await assert.rejects(rig.host.reload('signal'), (err: unknown) => isHotlineError(err, 'HOTLINE_E_UPGRADE_IN_PROGRESS'));
    assert.equal(port.dispatcher.suspended, true, 'the export still holds dispatch');
    assert.equal(rig.host.status().swaps.length, 1, 'no swap ran: only the start');

    // The upgrade aborts: every connection is served again, by the version that was serving.
    exporter.resume();
    assert.equal(port.lock.holder, undefined);
    assert.equal((await rig.tcp.ask('after-abort')).tag, 'v1');
    assert.equal((await rig.host.reload()).to, 'traffic@v2', 'a reload after the upgrade works');
  } finally {
    await rig.close();
  }
});

test("the adoption's migrate is bounded by hookTimeout (one migrateState for swap and upgrade)", async () => {
  const p = pluginDir(counterPlugin('v1').replace('migrate: (prev) => ({ total: (prev.state as { total: number }).total }),', 'migrate: () => new Promise(() => {}),'));
  const host = await createHost({ plugin: p.entry, listen: [{ transport: 'ws' }], logger: quietLogger, hookTimeout: 200, shutdownTimeout: 500 });
  try {
    const adopter = new ConnectionAdopter(host.handoffPort());
    assert.equal(host.handoffPort().lock.holder, 'adopt');
    await assert.rejects(
      adopter.importState({ t: 'state', plugin: 'counter', version: 'v0', state: { total: 41 } }),
      (err: unknown) => isHotlineError(err, 'HOTLINE_E_MIGRATE') && /did not settle within 200 ms/.test(err.message),
    );
    assert.deepEqual(host.handoffPort().current()!.state, { total: 0 }, 'nothing of the late migrate was committed');
    await assert.rejects(host.reload(), (err: unknown) => isHotlineError(err, 'HOTLINE_E_UPGRADE_IN_PROGRESS'));
  } finally {
    await host.close();
    p.remove();
  }
});
