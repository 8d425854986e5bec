import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect } from '../../src/client/index.js';
import { createHost } from '../../src/index.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';
import { CuttingProxy, ExactnessChecker, streamPlugin } from './fixtures.js';

test('connections cut mid-frame by a proxy resume exactly: every message once, in order, both directions', async () => {
  const p = pluginDir(streamPlugin(5));
  const host = await createHost({ plugin: p.entry, sessions: true, logger: quietLogger });
  const proxy = new CuttingProxy(host.addresses()[0]!.port);
  const proxyPort = await proxy.listen();
  const clients = Array.from({ length: 4 }, () => connect(`ws://127.0.0.1:${proxyPort}/`, { backoff: { initialDelay: 20, maxDelay: 200 } }));
  const checks = clients.map((c) => new ExactnessChecker(c));
  const sent = clients.map(() => 0);
  try {
    const TOTAL = 600;
    for (let cut = 0; cut < 5; cut++) {
      // Stream until every client has some replies beyond this round's start, then cut everything mid-chunk.
      const target = (cut + 1) * (TOTAL / 6);
      while (sent.some((n) => n < target)) {
        clients.forEach((c, i) => {
          if (sent[i]! < target) c.send(String(++sent[i]!));
        });
        await new Promise((resolve) => setImmediate(resolve));
      }
      await Promise.all(checks.map((ch) => ch.until(() => ch.replies >= target - 20 && ch.ticks > 0, `round ${cut}`)));
      const before = proxy.cuts;
      proxy.cutOnNextChunk();
      await Promise.all(checks.map((ch) => ch.until(() => proxy.cuts > before, 'a cut')));
    }
    while (sent.some((n) => n < TOTAL)) clients.forEach((c, i) => sent[i]! < TOTAL && c.send(String(++sent[i]!)));
    await Promise.all(checks.map((ch) => ch.until(() => ch.replies === TOTAL, 'all replies')));
    for (const ch of checks) {
      assert.deepEqual(ch.errors, []);
      assert.deepEqual(ch.lost, []);
      assert.equal(ch.replies, TOTAL);
      assert.ok(ch.ticks > 0);
    }
    assert.ok(proxy.cuts >= 5, `cuts: ${proxy.cuts}`);
    assert.ok(checks.reduce((n, ch) => n + ch.resumes, 0) >= 5);
  } finally {
    for (const c of clients) c.close();
    await proxy.close();
    await host.close();
    p.remove();
  }
});
