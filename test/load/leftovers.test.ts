/**
 * What a version leaves behind is closed when it is retired (issue 11; docs/guide.md, "What a version leaves
 * behind"): intervals from `require('timers')` and `globalThis.setInterval` stop at the switch, `process.on` listeners
 * are removed, and the child processes, servers and accepted connections it opened are gone after the swap. Before,
 * 31 messages of old code reached a client after a swap, and a `process.on` listener per version leaked 335 MB over
 * 200 swaps. The suite runs with --expose-gc.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { createHost } from '../../src/index.js';
import { wsClient } from '../helpers/clients.js';
import { mb, heapOverSwaps } from '../helpers/heap.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';
import { until } from '../helpers/until.js';

const SHARED = 'hotline.test.leftovers';
const EVENT = 'hotline-test-leftover';

interface Shared {
  ticks: Record<string, number>;
  pids: Record<string, number>;
  ports: Record<string, number>;
}

function shared(): Shared {
  return (globalThis as Record<symbol, Shared>)[Symbol.for(SHARED)]!;
}

/** A version that opens one of everything and forgets it all: no dispose. */
function leavingPlugin(tag: string): string {
  return `
import { definePlugin } from 'hotline';
declare const require: (id: string) => any;
const timers = require('timers');
const g = globalThis as Record<symbol, any>;
const s = (g[Symbol.for('${SHARED}')] ??= { ticks: {}, pids: {}, ports: {} });
s.ticks['${tag}.require'] = 0;
s.ticks['${tag}.global'] = 0;
s.ticks['${tag}.process'] = 0;
timers.setInterval(() => { s.ticks['${tag}.require']++; }, 2);
globalThis.setInterval(() => { s.ticks['${tag}.global']++; }, 2);
process.on('${EVENT}', () => { s.ticks['${tag}.process']++; });
async function open() {
  const child = require('child_process').spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  s.pids['${tag}'] = child.pid;
  const tcp = require('node:net').createServer((sock: any) => sock.write('${tag} accepted\\n'));
  const web = require('http').createServer((_q: any, r: any) => r.end('${tag}'));
  await Promise.all([tcp, web].map((srv) => new Promise((ok) => srv.listen(0, '127.0.0.1', ok))));
  s.ports['${tag}.tcp'] = tcp.address().port;
  s.ports['${tag}.http'] = web.address().port;
  return {};
}
export default definePlugin({
  name: 'leaving', version: '${tag}', api: 1,
  init: open,
  onMessage(conn, data) {
    // A client subscribed to ticks of this version: old code must stop sending them at the switch.
    if (data === 'subscribe') {
      s.ticks['${tag}.sent'] = 0;
      timers.setInterval(() => { s.ticks['${tag}.sent']++; conn.send('tick from ${tag}'); }, 2);
    }
    conn.send('${tag}|' + String(data));
  },
});
`;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Resolves true once a TCP connect to the port is accepted, false when it is refused. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

test('timers, process listeners, a child process, servers and their connections of v1 are gone after the swap', async () => {
  const p = pluginDir(leavingPlugin('v1'));
  const host = await createHost({ plugin: p.entry, logger: quietLogger, probation: false });
  try {
    const ws = await wsClient(host.addresses()[0]!.url);
    ws.send('subscribe');
    await until(() => ws.inbox.messages.filter((m) => m === 'tick from v1').length >= 3, 'v1 ticks to reach the client');
    await until(() => shared().ticks['v1.require']! >= 3 && shared().ticks['v1.global']! >= 3, 'v1 intervals');
    process.emit(EVENT as 'warning', new Error('ping') as never);
    assert.equal(shared().ticks['v1.process'], 1);
    const pid = shared().pids['v1']!;
    assert.ok(alive(pid), 'v1 started a child process');
    assert.ok(await accepts(shared().ports['v1.http']!), 'v1 serves http');
    // A connection v1's server accepted: its handlers are old code, so it is closed too.
    const accepted = net.connect(shared().ports['v1.tcp']!, '127.0.0.1');
    const acceptedClosed = new Promise<void>((r) => accepted.on('close', () => r()));
    accepted.on('error', () => {});
    await new Promise((r) => accepted.once('data', r));

    p.write(leavingPlugin('v2'));
    await host.reload();
    const frozen = { ...shared().ticks };
    ws.send('after');
    await until(() => ws.inbox.messages.includes('v2|after'), 'v2 to serve');

    await until(() => !alive(pid), 'the v1 child process to be killed');
    assert.equal(await accepts(shared().ports['v1.tcp']!), false, 'v1 tcp server closed');
    assert.equal(await accepts(shared().ports['v1.http']!), false, 'v1 http server closed');
    assert.ok(await accepts(shared().ports['v2.http']!), 'v2 serves http');
    await acceptedClosed;
    await until(() => shared().ticks['v2.require']! >= 20 && shared().ticks['v2.global']! >= 20, 'v2 intervals');

    for (const k of ['v1.require', 'v1.global', 'v1.sent']) assert.equal(shared().ticks[k], frozen[k], `${k} stopped at the swap`);
    // Ticks v1 sent before the switch may still be on the wire when reload() resolves; the count says that every one
    // of those arrived and that none came after it (the connection keeps order, and v2|after is already in).
    const v1Ticks = ws.inbox.messages.filter((m) => m === 'tick from v1').length;
    assert.equal(v1Ticks, frozen['v1.sent'], 'the client got the ticks v1 sent before the swap, and none after');
    assert.equal(process.listenerCount(EVENT), 1, 'only v2 listens');
    process.emit(EVENT as 'warning', new Error('ping') as never);
    assert.deepEqual([shared().ticks['v1.process'], shared().ticks['v2.process']], [1, 1]);
    ws.ws.close();
  } finally {
    await host.close();
    p.remove();
  }
  assert.equal(process.listenerCount(EVENT), 0, 'host.close() retired the last version');
  await until(() => !alive(shared().pids['v2']!), 'the v2 child process to be killed at close');
  delete (globalThis as Record<symbol, unknown>)[Symbol.for(SHARED)];
});

/** Each version holds ~2 MB through the listener and the intervals it forgets. */
function heavyPlugin(n: number): string {
  return `
import { definePlugin } from 'hotline';
declare const require: (id: string) => any;
const g = globalThis as Record<symbol, any>;
const ticks: Record<string, number> = (g[Symbol.for('${SHARED}.heavy')] ??= {});
const big = Array.from({ length: 50_000 }, (_, i) => ({ i, v: ${n} }));
ticks['${n}'] = 0;
process.on('${EVENT}', () => big.length);
require('timers').setInterval(() => { ticks['${n}']++; }, 5);
globalThis.setInterval(() => { ticks['${n}'] += big.length > 0 ? 1 : 0; }, 5);
export default definePlugin({
  name: 'heavy', version: '${n}', api: 1,
  onMessage(conn) { conn.send('v${n}:' + big.length); },
});
`;
}

test('200 swaps of a plugin adding a process.on listener and real intervals: heap flat, nothing old running', async (t) => {
  const p = pluginDir(heavyPlugin(0));
  const host = await createHost({ plugin: p.entry, logger: quietLogger, probation: false });
  const ticks = () => (globalThis as Record<symbol, Record<string, number>>)[Symbol.for(`${SHARED}.heavy`)]!;
  try {
    const ws = await wsClient(host.addresses()[0]!.url);
    const { heap10, heapLast: heap200 } = await heapOverSwaps(200, async (i) => {
      p.write(heavyPlugin(i));
      await host.reload();
      ws.send('x');
      assert.equal(await ws.inbox.next(), `v${i}:50000`);
    });
    const bound = Math.max(heap10 * 1.25, heap10 + 20 * 1024 * 1024);
    const figures = `heap after 10 swaps ${mb(heap10)} MB, after 200 swaps ${mb(heap200)} MB (bound ${mb(bound)} MB)`;
    t.diagnostic(figures);
    console.log(`leftovers memory: ${figures}`);
    assert.ok(heap200 <= bound, figures);
    assert.equal(process.listenerCount(EVENT), 1, 'one listener: the current version\'s');

    const before = { ...ticks() };
    await until(() => ticks()['200']! >= before['200']! + 10, 'the current version to tick');
    const moved = Object.keys(before).filter((k) => k !== '200' && ticks()[k] !== before[k]);
    assert.deepEqual(moved, [], 'no interval of an old version still runs');
    ws.ws.close();
  } finally {
    await host.close();
    p.remove();
    delete (globalThis as Record<symbol, unknown>)[Symbol.for(`${SHARED}.heavy`)];
  }
});
