/**
 * Poison messages in inline mode (issue 11): under `hotline start --sessions`, a session client's message that
 * blocks the worker's event loop is killed by the watchdog, and the client replays it to the restarted worker, which
 * hangs again. The third time it is dropped: never handed to the plugin, HOTLINE_E_POISON_MESSAGE to its sender
 * (the client's `dropped` event), counted in status; its session goes on, and another session client is served
 * throughout. Real bin, real processes, real sockets.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { connect, type HotlineClient } from '../../src/client/index.js';
import { adminStatus, HotlineProcess } from '../e2e/hotline-process.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { until } from '../helpers/until.js';

const PLUGIN = `
import { definePlugin } from 'hotline';
export default definePlugin({
  name: 'poison', version: '1.0.0', api: 1,
  init: () => ({}),
  migrate: () => ({}),
  onMessage(conn, data) {
    if (data === 'poison') while (true) {}
    conn.send('r:' + String(data));
  },
});
`;

interface Status {
  sessionsPoisoned?: number;
  supervisor: { restarts: number; watchdog: { hangs: number } };
}

/** A session client and everything it heard. */
function client(url: string): { c: HotlineClient; got: string[]; dropped: Array<{ code: string; data: unknown }> } {
  const c = connect(url, { backoff: { initialDelay: 50, maxDelay: 300 } });
  const got: string[] = [];
  const dropped: Array<{ code: string; data: unknown }> = [];
  c.on('message', (d) => got.push(String(d)));
  c.on('dropped', (info) => dropped.push({ code: info.code, data: info.data }));
  return { c, got, dropped };
}

test('a replayed message that hung two workers is dropped the third time, with HOTLINE_E_POISON_MESSAGE to its sender', { timeout: 90_000 }, async (t) => {
  const p = pluginDir(PLUGIN);
  const admin = path.join(p.dir, 'admin.sock');
  const { proc, ready } = await HotlineProcess.start(['start', p.entry, '--port', '0', '--admin', admin, '--sessions', '--watchdog-timeout', '600'], p.dir);
  const a = client(ready.url);
  const b = client(ready.url);
  try {
    a.c.send('a1');
    b.c.send('b1');
    await until(() => a.got.includes('r:a1') && b.got.includes('r:b1'), 'both served before the poison');

    const sentAt = Date.now();
    a.c.send('poison');
    await until(() => a.dropped.length === 1, 'the poison message dropped', 60_000);
    const droppedMs = Date.now() - sentAt;
    assert.deepEqual(a.dropped, [{ code: 'HOTLINE_E_POISON_MESSAGE', data: 'poison' }]);
    assert.equal(a.c.queued, 0, 'the client no longer holds it for a replay');

    a.c.send('a2');
    b.c.send('b2');
    await until(() => a.got.includes('r:a2') && b.got.includes('r:b2'), 'both served after the drop', 30_000);
    assert.deepEqual(a.got, ['r:a1', 'r:a2'], 'the poison message never got a reply: the plugin never finished it');
    assert.deepEqual(b.got, ['r:b1', 'r:b2']);

    const s = await adminStatus<Status>(admin, p.dir);
    assert.equal(s.supervisor.watchdog.hangs, 2, 'it hung the worker twice, not a third time');
    assert.equal(s.supervisor.restarts, 2);
    assert.equal(s.sessionsPoisoned, 1);
    assert.ok(proc.logs.some((r) => r.code === 'HOTLINE_E_POISON_MESSAGE'), 'logged with its code');
    t.diagnostic(`poison sent → dropped after two watchdog kills: ${droppedMs} ms (watchdogTimeout 600)`);
  } finally {
    a.c.close();
    b.c.close();
    proc.kill('SIGTERM');
    await proc.exited;
    p.remove();
  }
});
