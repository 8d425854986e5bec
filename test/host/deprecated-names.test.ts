/**
 * Issue 10 (structure: one word, one meaning): the public names renamed in 0.2 still work for one release, as the
 * old option names, the old config keys and flags, and the old host event (docs/api.md#deprecated-names). The new name
 * wins when both are given.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseTuning, validateConfig } from '../../src/config/tuning.js';
import { resolveOptions } from '../../src/host/options.js';
import { createHost, type SendAwayBatch } from '../../src/index.js';
import { until, wsClient } from '../helpers/clients.js';
import { counterPlugin, pluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';

test('drainTimeout, drain and probation.windowMs are read as settleTimeout, sendAway and probation.window', () => {
  const old = resolveOptions({ plugin: 'p.ts', drainTimeout: 123, drain: { batchSize: 7, interval: 9 }, probation: { windowMs: 456 } });
  assert.equal(old.settleTimeout, 123);
  assert.deepEqual(old.sendAway, { batchSize: 7, interval: 9 });
  assert.equal(old.probation && old.probation.window, 456);
  assert.equal(old.probation && 'windowMs' in old.probation, false);

  const both = resolveOptions({ plugin: 'p.ts', settleTimeout: 1, drainTimeout: 2, sendAway: { batchSize: 3 }, drain: { batchSize: 4 }, probation: { window: 5, windowMs: 6 } });
  assert.equal(both.settleTimeout, 1);
  assert.equal(both.sendAway.batchSize, 3);
  assert.equal(both.probation && both.probation.window, 5);

  // An old name is validated like the new one.
  assert.throws(() => resolveOptions({ plugin: 'p.ts', drainTimeout: -1 }), { code: 'HOTLINE_E_CONFIG' });
});

test('the old flags and config keys become the new option names', () => {
  assert.deepEqual(parseTuning({ 'drain-timeout': '100', 'drain-batch-size': '7', 'drain-interval': '9' }, false), {
    settleTimeout: 100,
    sendAway: { batchSize: 7, interval: 9 },
  });
  // Flags win over the file, whichever name each uses.
  assert.deepEqual(parseTuning({ 'settle-timeout': '50' }, false), { settleTimeout: 50 });
  const file = validateConfig({ drainTimeout: 10, probation: { windowMs: 20 }, watch: { debounceMs: 3, stabilityMs: 4 } }, 'test');
  assert.deepEqual([...file.keys()], ['drainTimeout', 'probation.windowMs', 'watch.debounceMs', 'watch.stabilityMs']);
});

test("the host emits the deprecated 'drain' event beside 'sendAway', with the same batch", async () => {
  const p = pluginDir(counterPlugin('v1'));
  const host = await createHost({ plugin: p.entry, logger: quietLogger });
  const seen: Array<[string, SendAwayBatch]> = [];
  host.on('sendAway', (b) => seen.push(['sendAway', b]));
  host.on('drain', (b) => seen.push(['drain', b]));
  try {
    const c = await wsClient(`ws://127.0.0.1:${host.addresses()[0]!.port}/`);
    await until(() => host.status().connections === 1, 'the client is connected');
    await host.close();
    assert.equal((await c.closed).code, 1012);
    assert.deepEqual(
      seen.map(([name, b]) => [name, b.closed]),
      [['sendAway', 1], ['drain', 1]],
    );
    assert.equal(seen[0]![1], seen[1]![1]);
  } finally {
    await host.close();
    p.remove();
  }
});
