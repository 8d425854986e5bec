/**
 * A process upgrade of a worker-mode host (`hotline start --isolation worker`) carries the global state as it is at
 * the upgrade, not the version's last in-memory checkpoint (taken every second): before, what the plugin changed in
 * the last second before `hotline upgrade` was lost, a planned change that lost state.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { adminRequest } from '../../src/admin/admin-client.js';
import { HotlineProcess } from '../e2e/hotline-process.js';
import { wsClient } from '../helpers/clients.js';
import { pluginDir } from '../helpers/plugin-dir.js';

const COUNTER = `
import { definePlugin } from 'hotline';
export default definePlugin<{ count: number }>({
  name: 'count', version: '1.0.0', api: 1,
  init: () => ({ count: 0 }),
  migrate: (prev) => prev.state as { count: number },
  onMessage(conn, _data, ctx) { ctx.state.count++; conn.send(String(ctx.state.count)); },
});
`;

test('hotline upgrade in worker isolation carries the global state as it is at the upgrade', { timeout: 90_000 }, async () => {
  const p = pluginDir(COUNTER);
  const admin = path.join(p.dir, 'admin.sock');
  const { proc, ready } = await HotlineProcess.start(['start', p.entry, '--port', '0', '--admin', admin, '--isolation', 'worker'], p.dir);
  try {
    const ws = await wsClient(ready.url);
    // 50 changes, then the upgrade at once: all of them within the checkpoint interval before it.
    for (let i = 1; i <= 50; i++) ws.send('x');
    await ws.inbox.waitFor(50);
    assert.equal(ws.inbox.messages.at(-1), '50');
    const summary = (await adminRequest(admin, 'upgrade', 60_000)) as { outcome: string };
    assert.equal(summary.outcome, 'committed');
    ws.send('x');
    await ws.inbox.waitFor(51);
    assert.equal(ws.inbox.messages.at(-1), '51', 'the count went on from the state at the upgrade');
    ws.ws.close();
  } finally {
    proc.kill('SIGTERM');
    await proc.exited;
    p.remove();
  }
});
