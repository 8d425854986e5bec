/**
 * Watch-triggered reloads in the situations a developer meets: a plugin living under a folder named `build`, and a
 * broken new helper file fixed after the swap that imported it failed.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { createHost, type Host } from '../../src/index.js';
import type { SwapRecord } from '../../src/swap/history.js';
import { wsClient } from '../helpers/clients.js';
import { counterPlugin, pluginDir } from '../helpers/plugin-dir.js';
import { switchedTo } from '../helpers/host-events.js';
import { quietLogger } from '../helpers/quiet-logger.js';

function nextSwap(host: Host, timeoutMs = 15_000): Promise<{ record: SwapRecord; code?: string }> {
  return new Promise((resolve, reject) => {
    const done = (value: { record: SwapRecord; code?: string }) => {
      clearTimeout(timer);
      host.off('swap', onSwap);
      host.off('swap-error', onError);
      resolve(value);
    };
    const onSwap = (record: SwapRecord) => done({ record });
    const onError = (err: { code: string }, record: SwapRecord) => done({ record, code: err.code });
    const timer = setTimeout(() => {
      host.off('swap', onSwap);
      host.off('swap-error', onError);
      reject(new Error(`no swap within ${timeoutMs} ms`));
    }, timeoutMs);
    host.on('swap', onSwap);
    host.on('swap-error', onError);
  });
}


test('a plugin that lives under a folder named build is still watched', async () => {
  const base = mkdtempSync(path.join(tmpdir(), 'hotline-test-'));
  const dir = path.join(base, 'build', 'chat');
  mkdirSync(dir, { recursive: true });
  const entry = path.join(dir, 'plugin.ts');
  writeFileSync(entry, counterPlugin('v1'));
  const host = await createHost({ plugin: entry, listen: [{ transport: 'ws' }], watch: true, logger: quietLogger });
  try {
    const swapped = nextSwap(host);
    writeFileSync(entry, counterPlugin('v2'));
    const { record, code } = await swapped;
    assert.equal(code, undefined);
    assert.deepEqual([record.trigger, record.to], ['watch', 'counter@v2']);
  } finally {
    await host.close();
    rmSync(base, { recursive: true, force: true });
  }
});

test('fixing a new helper after the swap that imported it failed reloads, though the serving version never imported it', async () => {
  const p = pluginDir(counterPlugin('v1'));
  const host = await createHost({ plugin: p.entry, listen: [{ transport: 'ws' }], watch: true, logger: quietLogger });
  try {
    const ws = await wsClient(host.addresses()[0]!.url);
    p.write('export const suffix = (;', 'helper.ts');
    const failed = nextSwap(host);
    p.write(
      counterPlugin('v2')
        .replace("import { definePlugin } from 'hotline';", "import { definePlugin } from 'hotline';\nimport { suffix } from './helper';")
        .replace("conn.send('v2:'", "conn.send(suffix + 'v2:'"),
    );
    const first = await failed;
    assert.equal(first.code, 'HOTLINE_E_BUILD');
    ws.send('a');
    assert.equal(await ws.inbox.next(), 'v1:1:1|a', 'v1 keeps serving');

    // The failing build may be retried once more if the helper's own change event comes late: wait for the switch.
    const fixed = switchedTo(host, 'counter@v2');
    p.write("export const suffix = '+';", 'helper.ts');
    const record = await fixed;
    assert.equal(record.trigger, 'watch');
    ws.send('b');
    assert.equal(await ws.inbox.next(), '+v2:2:2|b');
    ws.ws.close();
    await ws.closed;
  } finally {
    await host.close();
    p.remove();
  }
});

test('a local import outside the plugin folder is watched too', async () => {
  const base = mkdtempSync(path.join(tmpdir(), 'hotline-test-'));
  const shared = path.join(base, 'shared', 'greeting.ts');
  const entry = path.join(base, 'app', 'plugin.ts');
  mkdirSync(path.dirname(shared), { recursive: true });
  mkdirSync(path.dirname(entry), { recursive: true });
  writeFileSync(shared, "export const greeting = 'hello';");
  writeFileSync(
    entry,
    counterPlugin('v1')
      .replace("import { definePlugin } from 'hotline';", "import { definePlugin } from 'hotline';\nimport { greeting } from '../shared/greeting';")
      .replace("conn.send('v1:'", "conn.send(greeting + ' v1:'"),
  );
  const host = await createHost({ plugin: entry, listen: [{ transport: 'ws' }], watch: true, logger: quietLogger });
  try {
    const ws = await wsClient(host.addresses()[0]!.url);
    ws.send('a');
    assert.equal(await ws.inbox.next(), 'hello v1:1:1|a');
    const swapped = nextSwap(host);
    writeFileSync(shared, "export const greeting = 'hi';");
    const { record, code } = await swapped;
    assert.equal(code, undefined);
    assert.equal(record.trigger, 'watch');
    ws.send('b');
    assert.equal(await ws.inbox.next(), 'hi v1:2:2|b');
    ws.ws.close();
    await ws.closed;
  } finally {
    await host.close();
    rmSync(base, { recursive: true, force: true });
  }
});
