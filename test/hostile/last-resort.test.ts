/**
 * Issue 9, item 3: errors that escape to the process. Before the last-resort handler, a plugin's unawaited rejected
 * promise (Node 20 throws on unhandled rejections) or a throw in a callback of its own (here an `fs` one) killed the worker
 * and every connection on it. Now both are logged as HOTLINE_E_PLUGIN_ESCAPED, counted in `hotline status`, and the
 * same worker serves on; an exception that unwound hotline's own code makes the worker exit 70 and the supervisor
 * restart it. Real `hotline start`, real processes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { adminStatus } from '../e2e/hotline-process.js';
import { wsClient } from '../helpers/clients.js';
import { underAttack } from './host-under-attack.js';

const ESCAPING_PLUGIN = `
import { definePlugin } from 'hotline';
export default definePlugin({
  name: 'escaping', version: '1.0.0', api: 1,
  init: () => ({}),
  onMessage(conn, data) {
    if (data === 'reject') Promise.reject(new Error('a promise the plugin never awaited'));
    // An fs callback runs outside anything hotline calls or wraps (nextTick and timers are wrapped: load/).
    else if (data === 'tick') require('node:fs').stat(__filename, () => { throw new Error('a throw in the plugin own fs callback'); });
    else if (data === 'misuse') require('node:fs').stat(__filename, () => conn.send(Symbol('not a message') as never));
    conn.send(data);
  },
});
`;

interface Status {
  escaped: { exceptions: number; rejections: number; last?: { code: string } };
  supervisor: { workerPid: number; restarts: number };
}

test('a plugin’s escaped rejection and nextTick throw are logged with a code and counted; the same worker serves on', { timeout: 120_000 }, async () => {
  const rig = await underAttack([], ESCAPING_PLUGIN);
  try {
    const c = await wsClient(rig.ready.url);
    for (const m of ['reject', 'tick', 'reject', 'tick']) {
      c.send(m);
      assert.equal(await c.inbox.next(), m);
    }
    await rig.proc.waitFor(() => (rig.proc.logs.filter((r) => r.code === 'HOTLINE_E_PLUGIN_ESCAPED').length >= 4 ? true : undefined), 10_000, 'four HOTLINE_E_PLUGIN_ESCAPED log lines');
    const s = await adminStatus<Status>(rig.admin, rig.plugin.dir);
    assert.equal(s.escaped.rejections, 2);
    assert.equal(s.escaped.exceptions, 2);
    assert.equal(s.escaped.last?.code, 'HOTLINE_E_PLUGIN_ESCAPED');
    c.ws.close();
    await rig.survived();
  } finally {
    await rig.close();
  }
});

test('an exception that unwound hotline code exits the worker with 70, logged HOTLINE_E_INTERNAL; the supervisor restarts it', { timeout: 120_000 }, async () => {
  const rig = await underAttack([], ESCAPING_PLUGIN);
  try {
    const before = await adminStatus<Status>(rig.admin, rig.plugin.dir);
    const c = await wsClient(rig.ready.url);
    c.send('misuse');
    await c.closed;
    const fatal = await rig.proc.waitFor(() => rig.proc.logs.find((r) => r.code === 'HOTLINE_E_INTERNAL' && r.level === 60), 10_000, 'the fatal HOTLINE_E_INTERNAL line');
    assert.equal(fatal.action, 'exit');
    await rig.proc.waitFor(() => rig.proc.logs.find((r) => r.code === 'HOTLINE_E_WORKER_EXIT' && /code 70/.test(String(r.msg))), 10_000, 'the supervisor seeing exit code 70');
    let after = before;
    for (let i = 0; i < 200 && after.supervisor.restarts < 1; i++) {
      await new Promise((r) => setTimeout(r, 50));
      after = await adminStatus<Status>(rig.admin, rig.plugin.dir).catch(() => after);
    }
    assert.equal(after.supervisor.restarts, 1);
    assert.notEqual(after.supervisor.workerPid, before.supervisor.workerPid);
    assert.equal(rig.proc.child.exitCode, null, 'the supervisor itself keeps running');
  } finally {
    await rig.close();
  }
});
