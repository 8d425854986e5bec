/**
 * Every way plugin code used to end the host from outside a handler (issue 11): a throw in a timer of
 * `require('timers')` or `globalThis.setTimeout`, a throwing microtask or tick, `process.exit` / `abort` / `kill`,
 * and a rejection nobody handles. Each one is counted against its version with a code, the host keeps running, and
 * the client's connection stays open.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createHost, type HotlineError } from '../../src/index.js';
import { attributeError, reportEscape } from '../../src/load/live-versions.js';
import { wsClient } from '../helpers/clients.js';
import { switchedTo } from '../helpers/host-events.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';
import { until } from '../helpers/until.js';

const ESCAPING = `
import { definePlugin } from 'hotline';
import * as nodeTimers from 'node:timers';
declare const require: (id: string) => any;
const timers = require('timers');
const proc = require('node:process');
export default definePlugin({
  name: 'escaping', version: 'e1', api: 1,
  onMessage(conn, data) {
    switch (data) {
      case 'timers': timers.setTimeout(() => { throw new Error('timers boom'); }, 1); break;
      case 'node-timers': nodeTimers.setTimeout(() => { throw new Error('node:timers boom'); }, 1); break;
      case 'global': globalThis.setTimeout(() => { throw new Error('globalThis boom'); }, 1); break;
      case 'microtask': queueMicrotask(() => { throw new Error('microtask boom'); }); break;
      case 'tick': process.nextTick(() => { throw new Error('tick boom'); }); break;
      case 'exit': try { process.exit(3); } catch { /* swallowed on purpose: it is counted anyway */ } break;
      case 'exit-uncaught': process.exit(3); break;
      case 'abort': process.abort(); break;
      case 'kill': proc.kill(process.pid, 'SIGKILL'); break;
      case 'exit-code': process.exitCode = 7; break;
      case 'reject': void Promise.reject(new Error('reject boom')); break;
      case 'fire-and-forget': void (async () => { await null; throw new Error('async boom'); })(); break;
    }
    conn.send('ok ' + String(data) + ' pid=' + (process.pid === proc.pid) + ' env=' + typeof process.env.PATH);
  },
});
`;

/**
 * Stand in for the process-wide last-resort handler (src/host/last-resort.ts, another part of issue 11): route
 * escaped errors to reportEscape, as it does. node:test's own handlers are set aside meanwhile, or they would fail
 * the test for an error the host handled.
 */
function lastResort(): { unattributed: unknown[]; restore: () => void } {
  const unattributed: unknown[] = [];
  const events = ['uncaughtException', 'unhandledRejection'] as const;
  const emitter = process as NodeJS.EventEmitter;
  const saved = events.map((e) => [e, emitter.listeners(e)] as const);
  for (const e of events) process.removeAllListeners(e);
  const onError = (kind: string) => (err: unknown) => {
    if (!reportEscape(err, kind)) unattributed.push(err);
  };
  process.on('uncaughtException', onError('uncaught exception'));
  process.on('unhandledRejection', onError('unhandled rejection'));
  return {
    unattributed,
    restore: () => {
      for (const e of events) process.removeAllListeners(e);
      for (const [e, ls] of saved) for (const l of ls) emitter.on(e, l as (...args: unknown[]) => void);
    },
  };
}

const CASES: Array<[string, string, RegExp]> = [
  ['timers', 'HOTLINE_E_HANDLER', /timers boom/],
  ['node-timers', 'HOTLINE_E_HANDLER', /node:timers boom/],
  ['global', 'HOTLINE_E_HANDLER', /globalThis boom/],
  ['microtask', 'HOTLINE_E_HANDLER', /microtask boom/],
  ['tick', 'HOTLINE_E_HANDLER', /tick boom/],
  ['exit', 'HOTLINE_E_PLUGIN_FORBIDDEN', /process\.exit\(3\)/],
  ['exit-uncaught', 'HOTLINE_E_PLUGIN_FORBIDDEN', /process\.exit\(3\)/],
  ['abort', 'HOTLINE_E_PLUGIN_FORBIDDEN', /process\.abort\(\)/],
  ['kill', 'HOTLINE_E_PLUGIN_FORBIDDEN', /process\.kill\(\d+\)/],
  ['exit-code', 'HOTLINE_E_PLUGIN_FORBIDDEN', /process\.exitCode/],
  ['reject', 'HOTLINE_E_PLUGIN_ESCAPED', /unhandled rejection: reject boom/],
  ['fire-and-forget', 'HOTLINE_E_PLUGIN_ESCAPED', /unhandled rejection: async boom/],
];

test('each escape is counted against its version with a code; the host and the connection survive', async () => {
  const p = pluginDir(ESCAPING);
  const guard = lastResort();
  const host = await createHost({ plugin: p.entry, logger: quietLogger, probation: false });
  const events: HotlineError[] = [];
  host.on('handler-error', (err) => events.push(err));
  try {
    const ws = await wsClient(host.addresses()[0]!.url);
    for (const [cmd, code, message] of CASES) {
      const before = events.length;
      ws.send(cmd);
      if (cmd === 'exit-uncaught' || cmd === 'abort' || cmd === 'kill' || cmd === 'exit-code') {
        // The refusal is thrown through the handler: the handler has no reply, and the error counts once.
        await until(() => events.length > before, `the ${cmd} error`);
      } else {
        assert.equal(await ws.inbox.next(), `ok ${cmd} pid=true env=string`);
        await until(() => events.length > before, `the ${cmd} error`);
      }
      const got = events.slice(before);
      assert.equal(got.length, 1, `${cmd}: counted once, got ${got.map((e) => e.message).join(' | ')}`);
      assert.equal(got[0]!.code, code, `${cmd}: ${got[0]!.message}`);
      assert.match(got[0]!.message, message);
    }
    const v = host.status().versions.at(-1)!;
    assert.equal(v.errors, CASES.length);
    assert.equal(host.state, 'running');
    assert.equal(host.status().connections, 1);
    assert.equal(process.exitCode, undefined, 'the plugin did not set the exit code');
    assert.deepEqual(guard.unattributed, []);
    ws.send('still here');
    assert.equal(await ws.inbox.next(), 'ok still here pid=true env=string');
    ws.ws.close();
  } finally {
    await host.close();
    guard.restore();
    p.remove();
  }
});

test('attributeError names the live version from a plugin stack frame, and nothing else', async () => {
  const p = pluginDir(`
import { definePlugin } from 'hotline';
export default definePlugin({
  name: 'attr', version: 'a1', api: 1,
  onMessage(conn) { conn.send('x'); },
  check(ctx) { (globalThis as Record<symbol, unknown>)[Symbol.for('hotline.test.err')] = new Error('made by the plugin'); },
});
`);
  const host = await createHost({ plugin: p.entry, logger: quietLogger, probation: false });
  const key = Symbol.for('hotline.test.err');
  try {
    const err = (globalThis as Record<symbol, unknown>)[key];
    const seq = host.status().versions.at(-1)!.seq;
    assert.deepEqual(attributeError(err), { label: `v${seq}`, seq, live: true });
    assert.equal(attributeError(new Error('host code')), undefined);
    assert.equal(attributeError('a string'), undefined);
    assert.equal(attributeError({ get stack() { throw new Error('hostile'); } }), undefined);
    await host.close();
    assert.deepEqual(attributeError(err), { label: `v${seq}`, seq, live: false }, 'a released version is still named');
  } finally {
    await host.close();
    p.remove();
    delete (globalThis as Record<symbol, unknown>)[key];
  }
});

test('probation sees escapes: a new version whose microtasks throw is rolled back to the old one', async () => {
  const good = `
import { definePlugin } from 'hotline';
export default definePlugin({ name: 'p', version: 'good', api: 1, onMessage(conn) { conn.send('good'); } });
`;
  const bad = `
import { definePlugin } from 'hotline';
export default definePlugin({
  name: 'p', version: 'bad', api: 1,
  onMessage(conn) { queueMicrotask(() => { throw new Error('late boom'); }); conn.send('bad'); },
});
`;
  const p = pluginDir(good);
  const host = await createHost({ plugin: p.entry, logger: quietLogger, probation: { window: 30_000, minErrors: 3, maxErrorRate: 0.5 } });
  try {
    const ws = await wsClient(host.addresses()[0]!.url);
    p.write(bad);
    await host.reload();
    const rolledBack = switchedTo(host, 'p@good');
    for (let i = 0; i < 3; i++) ws.send('x');
    await rolledBack;
    ws.send('y');
    await until(() => ws.inbox.messages.at(-1) === 'good', 'the good version to answer');
    assert.equal(host.status().versions.find((v) => v.version === 'bad')!.errors, 3);
    ws.ws.close();
  } finally {
    await host.close();
    p.remove();
  }
});
