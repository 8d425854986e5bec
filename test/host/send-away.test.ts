import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect, type HotlineClient } from '../../src/client/index.js';
import { createHost, type SendAwayBatch, MemorySessionStore } from '../../src/index.js';
import { counterPlugin, pluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';

test('a shutdown send-away of 2,000 session clients in batches of 200 sends them to the next host in waves, all resumed', { timeout: 120_000 }, async () => {
  const N = 2000;
  const p = pluginDir(counterPlugin('v1'));
  const store = new MemorySessionStore();
  const opts = { plugin: p.entry, logger: quietLogger, sessions: { store, reconnectDelay: 300 }, sendAway: { batchSize: 200, interval: 50 } };
  const a = await createHost(opts);
  const b = await createHost(opts);
  let port = a.addresses()[0]!.port;
  const clients: HotlineClient[] = [];
  let opened = 0;
  let resumed = 0;
  let lost = 0;
  let hinted = 0;
  try {
    for (let i = 0; i < N; i++) {
      const c = connect(() => `ws://127.0.0.1:${port}/`, { backoff: { initialDelay: 100, maxDelay: 1000 } });
      c.on('open', () => opened++);
      c.on('resumed', () => resumed++);
      c.on('lost-session', () => lost++);
      c.on('reconnecting', ({ code }) => code === 1012 && hinted++);
      clients.push(c);
    }
    for (let i = 0; i < 600 && opened < N; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(opened, N);
    // From now on clients come back to the second host; the first one sends its clients away.
    port = b.addresses()[0]!.port;
    const batches: SendAwayBatch[] = [];
    const resumedAtBatch: number[] = [];
    a.on('sendAway', (batch) => {
      batches.push(batch);
      resumedAtBatch.push(b.status().sessions ?? 0);
    });
    await a.close();
    for (let i = 0; i < 600 && resumed < N; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(resumed, N);
    assert.equal(lost, 0);
    assert.equal(hinted, N, 'every client saw 1012 and the hint');
    assert.deepEqual(batches.map((x) => x.closed), Array(10).fill(200));
    assert.deepEqual(batches.map((x) => x.remaining), [1800, 1600, 1400, 1200, 1000, 800, 600, 400, 200, 0]);
    // Waves: when batch k is sent away, at most the clients of the k-1 batches before it can be back.
    resumedAtBatch.forEach((n, k) => assert.ok(n <= 200 * k, `batch ${k + 1}: ${n} already resumed`));
    assert.equal(b.status().sessions, N);
  } finally {
    for (const c of clients) c.close();
    await a.close();
    await b.close();
    p.remove();
  }
});
