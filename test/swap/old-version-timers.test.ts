/**
 * A swap clears every timer the old version left running, whether it used the timer globals at module top level or
 * ctx.setInterval, and no code of the old version runs after the switch.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createHost } from '../../src/index.js';
import { wsClient } from '../helpers/clients.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';
import { until } from '../helpers/until.js';

const TICKS = 'hotline.test.ticks';

interface Ticks {
  [key: string]: number;
}

/** Each version counts its own ticks in a global object the test can read. */
function tickingPlugin(tag: string): string {
  return `
import { definePlugin } from 'hotline';
const g = globalThis as Record<symbol, Record<string, number>>;
const ticks = (g[Symbol.for('${TICKS}')] ??= {});
ticks['${tag}.top'] = 0;
ticks['${tag}.ctx'] = 0;
ticks['${tag}.late'] = 0;
// Forgotten on purpose: nothing ever clears this interval but the host.
setInterval(() => { ticks['${tag}.top']++; }, 2);
export default definePlugin({
  name: 'ticking', version: '${tag}', api: 1,
  init(ctx) { ctx.setInterval(() => { ticks['${tag}.ctx']++; }, 2); return {}; },
  migrate(_prev, ctx) { ctx.setInterval(() => { ticks['${tag}.ctx']++; }, 2); return {}; },
  onMessage(conn, data) {
    // A reply scheduled for later: it must never arrive if the version is replaced first. Both versions use the
    // same delay, so once v2's has fired, v1's would have fired too had it not been cleared.
    setTimeout(() => { ticks['${tag}.late']++; conn.send('late from ${tag}'); }, 2500);
    conn.send('${tag}|' + String(data));
  },
});
`;
}

function ticks(): Ticks {
  return (globalThis as Record<symbol, Ticks>)[Symbol.for(TICKS)]!;
}

test('the old version\'s timers (top-level and ctx) are cleared by the swap; none of its code runs after', async () => {
  const p = pluginDir(tickingPlugin('v1'));
  const host = await createHost({ plugin: p.entry, logger: quietLogger, probation: false });
  try {
    const ws = await wsClient(host.addresses()[0]!.url);
    await until(() => ticks()['v1.top']! >= 3 && ticks()['v1.ctx']! >= 3, 'v1 timers to tick');
    ws.send('a');
    assert.equal(await ws.inbox.next(), 'v1|a');

    p.write(tickingPlugin('v2'));
    await host.reload();
    const frozen = { top: ticks()['v1.top'], ctx: ticks()['v1.ctx'], late: ticks()['v1.late'] };

    // Let the new version run well past the old intervals' period and the old pending reply's delay.
    ws.send('b');
    assert.equal(await ws.inbox.next(), 'v2|b');
    await until(() => ticks()['v2.late']! >= 1, 'the v2 late reply');
    await ws.inbox.waitFor(3);
    await until(() => ticks()['v2.top']! >= 20 && ticks()['v2.ctx']! >= 20, 'v2 timers to tick');

    assert.deepEqual({ top: ticks()['v1.top'], ctx: ticks()['v1.ctx'], late: ticks()['v1.late'] }, frozen);
    assert.equal(frozen.late, 0, 'the reply v1 scheduled never ran');
    assert.deepEqual(ws.inbox.messages, ['v1|a', 'v2|b', 'late from v2']);
    ws.ws.close();
  } finally {
    await host.close();
    p.remove();
    delete (globalThis as Record<symbol, unknown>)[Symbol.for(TICKS)];
  }
});

test('an async dispose() of the old version does not keep its timers alive while it runs', async () => {
  const RELEASE = Symbol.for('hotline.test.release-dispose');
  const slowDispose = (tag: string) =>
    tickingPlugin(tag).replace(
      "name: 'ticking',",
      `name: 'ticking',
  dispose() {
    ticks['${tag}.disposing'] = 1;
    return new Promise<void>((resolve) => { (globalThis as Record<symbol, unknown>)[Symbol.for('hotline.test.release-dispose')] = resolve; });
  },`,
    );
  const p = pluginDir(slowDispose('v1'));
  const host = await createHost({ plugin: p.entry, logger: quietLogger, probation: false });
  try {
    await until(() => ticks()['v1.top']! >= 3, 'v1 timers to tick');
    p.write(tickingPlugin('v2'));
    const swapped = host.reload();
    await until(() => ticks()['v1.disposing'] === 1, 'v1 dispose() to start');
    const frozen = { top: ticks()['v1.top'], ctx: ticks()['v1.ctx'] };
    // v2 serves and ticks while v1's dispose() is still pending.
    await until(() => ticks()['v2.top']! >= 20 && ticks()['v2.ctx']! >= 20, 'v2 timers to tick');
    assert.deepEqual({ top: ticks()['v1.top'], ctx: ticks()['v1.ctx'] }, frozen);
    (globalThis as Record<symbol, () => void>)[RELEASE]!();
    assert.equal((await swapped).outcome, 'switched');
  } finally {
    await host.close();
    p.remove();
    delete (globalThis as Record<symbol, unknown>)[Symbol.for(TICKS)];
    delete (globalThis as Record<symbol, unknown>)[RELEASE];
  }
});
