/**
 * Code evaluated through vm is not source-mapped by Node (DESIGN.md §4), so hotline maps plugin stack traces itself:
 * users must see `plugin.ts:N`, not a line of the bundle.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createHost, type HotlineError, isHotlineError } from '../../src/index.js';
import { wsClient } from '../helpers/clients.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';

/** The 1-based line of the first line of `source` that contains `marker`. */
function lineOf(source: string, marker: string): number {
  const i = source.split('\n').findIndex((l) => l.includes(marker));
  assert.ok(i >= 0, `marker ${marker} not found`);
  return i + 1;
}

const UTIL = `
// A few lines, so the line numbers of util.ts and of the bundle differ.
export interface Shape { n: number }

export function explode(what: string): never {
  throw new Error('util exploded: ' + what); // MARK-UTIL
}
`;

const PLUGIN = `
import { definePlugin } from 'hotline';
import { explode } from './util.ts';

type Pad = { a: number; b: string };
const pad: Pad = { a: 1, b: 'x' };

export default definePlugin({
  name: 'mapped', version: '1', api: 1,
  async onMessage(conn, data) {
    if (data === 'sync') {
      throw new Error('plugin exploded ' + pad.b); // MARK-SYNC
    }
    if (data === 'async') {
      await Promise.resolve();
      throw new Error('async exploded'); // MARK-ASYNC
    }
    if (data === 'util') explode('deep');
    conn.send('ok');
  },
});
`;

test('stack traces of handler errors point at the .ts file and line, through local imports and awaits', async () => {
  const p = pluginDir(PLUGIN, { 'util.ts': UTIL });
  const host = await createHost({ plugin: p.entry, logger: quietLogger, probation: false });
  const errors: HotlineError[] = [];
  host.on('handler-error', (err) => errors.push(err));
  try {
    const ws = await wsClient(host.addresses()[0]!.url);
    for (const m of ['sync', 'async', 'util', 'done']) ws.send(m);
    assert.equal(await ws.inbox.next(), 'ok');
    assert.equal(errors.length, 3);
    const stacks = errors.map((e) => String((e.cause as Error).stack));
    assert.ok(stacks[0]!.includes(`plugin.ts:${lineOf(PLUGIN, 'MARK-SYNC')}:`), stacks[0]);
    assert.ok(stacks[1]!.includes(`plugin.ts:${lineOf(PLUGIN, 'MARK-ASYNC')}:`), stacks[1]);
    assert.ok(stacks[2]!.includes(`util.ts:${lineOf(UTIL, 'MARK-UTIL')}:`), stacks[2]);
    assert.ok(stacks[2]!.includes(`plugin.ts:${lineOf(PLUGIN, "explode('deep')")}:`), 'the caller frame is mapped too');
    for (const s of stacks) assert.doesNotMatch(s, /\.bundle\.js:/, 'no frame is left pointing into the bundle');
    ws.ws.close();
  } finally {
    await host.close();
    p.remove();
  }
});

test('an error thrown at module top level, or by init, is mapped as well', async () => {
  const good = PLUGIN;
  const p = pluginDir(good, { 'util.ts': UTIL });
  const host = await createHost({ plugin: p.entry, logger: quietLogger, probation: false });
  try {
    const top = good.replace('const pad: Pad', "if (pad0()) throw new Error('top exploded'); // MARK-TOP\nconst pad: Pad").replace(
      'type Pad',
      'function pad0() { return true; }\ntype Pad',
    );
    p.write(top);
    const evalErr = await host.reload().then(
      () => assert.fail('should not load'),
      (err: unknown) => err,
    );
    assert.ok(isHotlineError(evalErr, 'HOTLINE_E_PLUGIN_EVAL'));
    const evalStack = String((evalErr.cause as Error).stack);
    assert.ok(evalStack.includes(`plugin.ts:${lineOf(top, 'MARK-TOP')}:`), evalStack);

    const init = good.replace("api: 1,", "api: 1,\n  init() {\n    throw new Error('init exploded'); // MARK-INIT\n  },");
    p.write(init);
    const initErr = await host.reload().then(
      () => assert.fail('should not load'),
      (err: unknown) => err,
    );
    assert.ok(isHotlineError(initErr, 'HOTLINE_E_INIT'));
    const initStack = String((initErr.cause as Error).stack);
    assert.ok(initStack.includes(`plugin.ts:${lineOf(init, 'MARK-INIT')}:`), initStack);
  } finally {
    await host.close();
    p.remove();
  }
});
