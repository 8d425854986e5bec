/**
 * Prototype pollution and replaced globals do not reach the host or the next version (issue 11). Before,
 * `Object.prototype.polluted = 1` made every later swap fail (`Getter must be a function`), a replaced `JSON.parse`
 * survived into every later version, and `Object.prototype.then` hung reloads and shutdown.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createHost, type HotlineError } from '../../src/index.js';
import { IntrinsicsGuard } from '../../src/load/intrinsics.js';
import { wsClient } from '../helpers/clients.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';
import { until } from '../helpers/until.js';

const nativeParse = JSON.parse;

/** Replies with what it sees of the built-ins; `top` is code run at module top level. */
function probePlugin(tag: string, top = ''): string {
  return `
import { definePlugin } from 'hotline';
${top}
export default definePlugin({
  name: 'probe', version: '${tag}', api: 1,
  onMessage(conn, data) {
    if (data === 'pollute') (Object.prototype as Record<string, unknown>).polluted = 1;
    if (data === 'parse') JSON.parse = () => ({ hijacked: true });
    if (data === 'then') (Object.prototype as Record<string, unknown>).then = function () {};
    const seen = { polluted: ({} as Record<string, unknown>).polluted, parse: JSON.parse('{"a":1}').a, then: typeof ({} as Record<string, unknown>).then };
    conn.send('${tag} ' + JSON.stringify(seen));
  },
});
`;
}

const CLEAN = '{"parse":1,"then":"undefined"}';

function hostIsClean(): void {
  assert.equal(({} as Record<string, unknown>).polluted, undefined, 'host Object.prototype');
  assert.equal(({} as Record<string, unknown>).then, undefined, 'host Object.prototype.then');
  assert.equal(JSON.parse, nativeParse, 'host JSON.parse');
}

test('a pollution and a replaced JSON.parse by v1 are repaired: the swap works, v2 and the host see the built-ins', async () => {
  const p = pluginDir(probePlugin('v1'));
  const host = await createHost({ plugin: p.entry, logger: quietLogger, probation: false });
  const errors: HotlineError[] = [];
  host.on('handler-error', (err) => errors.push(err));
  try {
    const ws = await wsClient(host.addresses()[0]!.url);
    ws.send('pollute');
    assert.equal(await ws.inbox.next(), 'v1 {"polluted":1,"parse":1,"then":"undefined"}');
    ws.send('parse');
    assert.equal(await ws.inbox.next(), 'v1 {"polluted":1,"then":"undefined"}');

    p.write(probePlugin('v2'));
    const record = await host.reload();
    assert.equal(record.outcome, 'switched');
    hostIsClean();
    ws.send('x');
    assert.equal(await ws.inbox.next(), `v2 ${CLEAN}`);

    p.write(probePlugin('v3'));
    await host.reload();
    ws.send('y');
    assert.equal(await ws.inbox.next(), `v3 ${CLEAN}`);

    // Found by the check before v2's load, or earlier by the slow sweep: either way against v1 only.
    const polluted = errors.filter((e) => e.code === 'HOTLINE_E_PLUGIN_POLLUTED');
    assert.ok(polluted.length >= 1 && polluted.length <= 2, `${polluted.length} pollution reports`);
    assert.ok(polluted.every((e) => e.message.startsWith('probe@v1: ')));
    const text = polluted.map((e) => e.message).join(' ');
    assert.match(text, /Object\.prototype\.polluted added/);
    assert.match(text, /JSON\.parse changed/);
    const v1 = host.status().versions.find((v) => v.version === 'v1')!;
    assert.equal(v1.errors, polluted.length);
    assert.equal(v1.lastError?.code, 'HOTLINE_E_PLUGIN_POLLUTED');
    ws.ws.close();
  } finally {
    await host.close();
    p.remove();
    hostIsClean();
  }
});

test('a module body that pollutes is refused with HOTLINE_E_PLUGIN_POLLUTED; the old version serves, nothing hangs', async () => {
  const p = pluginDir(probePlugin('v1'));
  const host = await createHost({ plugin: p.entry, logger: quietLogger, probation: false });
  try {
    const ws = await wsClient(host.addresses()[0]!.url);
    p.write(probePlugin('v2', '(Object.prototype as Record<string, unknown>).then = function () {};'));
    await assert.rejects(host.reload(), (err: HotlineError) => {
      assert.equal(err.code, 'HOTLINE_E_PLUGIN_POLLUTED');
      assert.match(err.message, /Object\.prototype\.then added/);
      return true;
    });
    hostIsClean();
    ws.send('a');
    assert.equal(await ws.inbox.next(), `v1 ${CLEAN}`);

    p.write(probePlugin('v3', 'JSON.parse = () => 0;'));
    await assert.rejects(host.reload(), { code: 'HOTLINE_E_PLUGIN_POLLUTED' });
    hostIsClean();

    p.write(probePlugin('v4'));
    assert.equal((await host.reload()).outcome, 'switched');
    ws.send('b');
    assert.equal(await ws.inbox.next(), `v4 ${CLEAN}`);
    ws.ws.close();
  } finally {
    await host.close();
    p.remove();
  }
});

test('Object.prototype.then set by a handler is repaired by the sweep; reload and close do not hang', async () => {
  const p = pluginDir(probePlugin('v1'));
  const host = await createHost({ plugin: p.entry, logger: quietLogger, probation: false });
  try {
    const ws = await wsClient(host.addresses()[0]!.url);
    ws.send('then');
    assert.equal(await ws.inbox.next(), 'v1 {"parse":1,"then":"function"}');
    await until(() => ({} as Record<string, unknown>).then === undefined, 'the sweep to repair Object.prototype.then');
    assert.equal(host.status().versions.at(-1)!.lastError?.code, 'HOTLINE_E_PLUGIN_POLLUTED');
    p.write(probePlugin('v2'));
    assert.equal((await host.reload()).outcome, 'switched');
    ws.ws.close();
  } finally {
    await host.close();
    p.remove();
    hostIsClean();
  }
});

test('the guard tolerates a polyfill-style non-enumerable method, and reports what it cannot repair', () => {
  const guard = new IntrinsicsGuard();
  guard.arm();
  const key = 'hotlineTestPolyfill';
  Object.defineProperty(Array.prototype, key, { value: () => 1, configurable: true, writable: true, enumerable: false });
  try {
    assert.deepEqual(guard.check(), [], 'a non-enumerable addition outside Object.prototype is tolerated');
    (Array.prototype as unknown as Record<string, unknown>).hotlineTestEnumerable = 1;
    assert.deepEqual(guard.repair().map((f) => [f.where, f.kind, f.repaired]), [['Array.prototype.hotlineTestEnumerable', 'added', true]]);
    Object.defineProperty(Math, 'PI', { value: Math.PI });
    assert.deepEqual(guard.check(), [], 'an identical redefinition is no change');
  } finally {
    delete (Array.prototype as unknown as Record<string, unknown>)[key];
  }
});
