/**
 * Versions must be garbage-collectable (DESIGN.md §4): after a swap, nothing of the old version's module stays
 * reachable, and 200 swaps of a ~200 KB plugin do not grow the heap beyond a generous bound of the heap after 10.
 * The suite runs with --expose-gc.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createHost } from '../../src/index.js';
import { wsClient } from '../helpers/clients.js';
import { collectUntil, mb, heapOverSwaps } from '../helpers/heap.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';

const WEAK = 'hotline.test.weak';

/** A plugin that leaves WeakRefs to its exports, its definition and a module-level object under a global symbol. */
function weakPlugin(tag: string): string {
  return `
import { definePlugin } from 'hotline';
declare const module: { exports: object };
const big = { rows: Array.from({ length: 10_000 }, (_, i) => ({ i, tag: '${tag}' })) };
const def = definePlugin<{ n: number }>({
  name: 'weak', version: '${tag}', api: 1,
  init: (ctx) => { ctx.setInterval(() => big.rows.length, 1000); return { n: 0 }; },
  migrate: (prev) => prev.state as { n: number },
  onMessage(conn, _data, ctx) { ctx.state.n++; conn.send('${tag}:' + ctx.state.n + ':' + big.rows.length); },
});
const g = globalThis as Record<symbol, Record<string, WeakRef<object>>>;
(g[Symbol.for('${WEAK}')] ??= {})['${tag}'] = new WeakRef(module.exports);
g[Symbol.for('${WEAK}')]!['${tag}.def'] = new WeakRef(def);
g[Symbol.for('${WEAK}')]!['${tag}.big'] = new WeakRef(big);
export default def;
`;
}

test('after a swap and gc, WeakRefs to the old version\'s exports, definition and module objects are cleared', async () => {
  const refs = () => (globalThis as Record<symbol, Record<string, WeakRef<object>>>)[Symbol.for(WEAK)]!;
  const p = pluginDir(weakPlugin('v1'));
  const host = await createHost({ plugin: p.entry, logger: quietLogger, probation: false });
  try {
    const ws = await wsClient(host.addresses()[0]!.url);
    ws.send('a');
    assert.equal(await ws.inbox.next(), 'v1:1:10000');
    const v1 = ['v1', 'v1.def', 'v1.big'];
    assert.ok(!(await collectUntil(() => v1.some((k) => refs()[k]!.deref() === undefined), 3)), 'v1 is alive while it serves');

    p.write(weakPlugin('v2'));
    await host.reload();
    ws.send('b');
    assert.equal(await ws.inbox.next(), 'v2:2:10000');
    const cleared = await collectUntil(() => v1.every((k) => refs()[k]!.deref() === undefined));
    assert.ok(cleared, `still reachable after the swap: ${v1.filter((k) => refs()[k]!.deref() !== undefined).join(', ')}`);
    assert.ok(refs()['v2']!.deref(), 'the serving version is, of course, alive');
    ws.ws.close();
  } finally {
    await host.close();
    p.remove();
    delete (globalThis as Record<symbol, unknown>)[Symbol.for(WEAK)];
  }
});

/** About 200 KB of source: many small functions and a table, different in every version. */
function bigPlugin(n: number): string {
  const fns: string[] = [];
  for (let i = 0; i < 1800; i++) {
    fns.push(`function f${i}(x: number): string { return 'v${n}-f${i}-' + (x * ${i} + ${n}).toString(16) + '-padding-padding'; }`);
  }
  const table = Array.from({ length: 1800 }, (_, i) => `f${i}`).join(', ');
  return `
import { definePlugin } from 'hotline';
${fns.join('\n')}
const table = [${table}];
export default definePlugin<{ n: number }>({
  name: 'big', version: '${n}', api: 1,
  init: () => ({ n: 0 }),
  migrate: (prev) => prev.state as { n: number },
  onMessage(conn, _data, ctx) { ctx.state.n++; conn.send(table[ctx.state.n % table.length]!(ctx.state.n)); },
});
`;
}

test('heap after 200 swaps of a ~200 KB plugin stays within a bound of the heap after 10', async (t) => {
  const source = bigPlugin(0);
  assert.ok(source.length > 190_000 && source.length < 260_000, `plugin source is ${source.length} bytes`);
  const p = pluginDir(source);
  const host = await createHost({ plugin: p.entry, logger: quietLogger, probation: false });
  try {
    const ws = await wsClient(host.addresses()[0]!.url);
    const { heap10, heapLast: heap200 } = await heapOverSwaps(200, async (i) => {
      p.write(bigPlugin(i));
      await host.reload();
      ws.send('x');
      assert.match(await ws.inbox.next(), new RegExp(`^v${i}-f\\d+-`));
    });
    const bound = Math.max(heap10 * 1.25, heap10 + 20 * 1024 * 1024);
    const figures = `heap after 10 swaps ${mb(heap10)} MB, after 200 swaps ${mb(heap200)} MB (bound ${mb(bound)} MB, ${source.length} B plugin)`;
    t.diagnostic(figures);
    console.log(`memory: ${figures}`);
    assert.ok(heap200 <= bound, figures);
    assert.equal(host.status().versions.length <= 20, true, 'status keeps a bounded number of version counters');
    ws.ws.close();
  } finally {
    await host.close();
    p.remove();
  }
});
