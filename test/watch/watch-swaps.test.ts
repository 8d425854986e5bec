/**
 * File-watch triggers: a change to any file of the plugin's import graph swaps, an unrelated file does not, a burst
 * of writes coalesces with the last content winning, and an editor's atomic save (temp file renamed over the entry)
 * swaps once, cleanly. Clients keep sending throughout and lose nothing.
 */
import assert from 'node:assert/strict';
import { renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { watch } from 'chokidar';
import { createHost, type Host, type SwapRecord } from '../../src/index.js';
import { wsClient, type WsClient } from '../helpers/clients.js';
import { pluginDir, type PluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';

/** Replies `${version}/${word}:${n}|${data}`; `word` comes from the local import ./util.ts. */
function plugin(version: string): string {
  return `
import { definePlugin } from 'hotline';
import { word } from './util.ts';
export default definePlugin<{ n: number }>({
  name: 'watched', version: '${version}', api: 1,
  init: () => ({ n: 0 }),
  migrate: (prev) => prev.state as { n: number },
  onMessage(conn, data, ctx) { ctx.state.n++; conn.send('${version}/' + word + ':' + ctx.state.n + '|' + String(data)); },
});
`;
}

const util = (word: string) => `export const word: string = '${word}';\n`;

interface Watched {
  host: Host;
  p: PluginDir;
  ws: WsClient;
  swaps: SwapRecord[];
  /** Resolves on the next swap whose record satisfies `pred`. */
  nextSwap(pred?: (r: SwapRecord) => boolean): Promise<SwapRecord>;
  /** Send a message and return its reply. */
  ask(data: string): Promise<string>;
  close(): Promise<void>;
}

async function watched(): Promise<Watched> {
  const p = pluginDir(plugin('v1'), { 'util.ts': util('alpha') });
  const host = await createHost({ plugin: p.entry, logger: quietLogger, probation: false, watch: { debounce: 20, stability: 40 } });
  const ws = await wsClient(host.addresses()[0]!.url);
  const swaps: SwapRecord[] = [];
  host.on('swap', (r) => swaps.push(r));
  host.on('swap-error', (_e, r) => swaps.push(r));
  let sent = 0;
  return {
    host,
    p,
    ws,
    swaps,
    nextSwap: (pred = () => true) =>
      new Promise((resolve) => {
        const on = (r: SwapRecord) => {
          if (!pred(r)) return;
          host.off('swap', on);
          resolve(r);
        };
        host.on('swap', on);
      }),
    async ask(data) {
      ws.send(data);
      sent++;
      await ws.inbox.waitFor(sent);
      return ws.inbox.messages[sent - 1]!;
    },
    async close() {
      ws.ws.terminate();
      await host.close();
      p.remove();
    },
  };
}

/**
 * Proving that nothing happens needs some time to pass. A separate watcher on the same folder, with the host's
 * settings, tells when the change has surely been seen; the margin then covers the host's debounce several times.
 */
async function seenByAWatcher(dir: string, file: string, write: () => void): Promise<void> {
  const observer = watch(dir, { ignoreInitial: true, awaitWriteFinish: { stabilityThreshold: 40, pollInterval: 10 }, atomic: true });
  await new Promise<void>((resolve) => observer.once('ready', () => resolve()));
  const seen = new Promise<void>((resolve) =>
    observer.on('all', (_event, p) => {
      if (path.resolve(p) === path.resolve(file)) resolve();
    }),
  );
  write();
  await seen;
  await observer.close();
  await new Promise((r) => setTimeout(r, 200));
}

test('editing a local import swaps; editing an unrelated file in the folder does not', async () => {
  const w = await watched();
  try {
    assert.equal(await w.ask('a'), 'v1/alpha:1|a');
    const swapped = w.nextSwap();
    w.p.write(util('beta'), 'util.ts');
    const record = await swapped;
    assert.equal(record.trigger, 'watch');
    assert.equal(record.outcome, 'switched');
    assert.equal(await w.ask('b'), 'v1/beta:2|b');

    const before = w.swaps.length;
    const notes = path.join(w.p.dir, 'NOTES.md');
    const other = path.join(w.p.dir, 'unused.ts');
    await seenByAWatcher(w.p.dir, other, () => {
      writeFileSync(notes, '# notes\n');
      writeFileSync(other, 'export const unused = 1;\n');
    });
    assert.equal(w.swaps.length, before, 'no swap for files outside the import graph');
    assert.equal(await w.ask('c'), 'v1/beta:3|c');
  } finally {
    await w.close();
  }
});

test('a burst of 5 rapid writes leads to fewer swaps than writes, and the final content wins', async () => {
  const w = await watched();
  try {
    const final = w.nextSwap((r) => r.to === 'watched@v6');
    for (let i = 2; i <= 6; i++) {
      w.p.write(plugin(`v${i}`));
      await new Promise((r) => setImmediate(r));
    }
    await final;
    assert.equal(await w.ask('x'), 'v6/alpha:1|x');
    // Anything still queued from the burst has the same content: let it settle, then count.
    await seenByAWatcher(w.p.dir, path.join(w.p.dir, 'marker.txt'), () => writeFileSync(path.join(w.p.dir, 'marker.txt'), 'x'));
    const watchSwaps = w.swaps.filter((r) => r.trigger === 'watch');
    assert.ok(watchSwaps.length >= 1 && watchSwaps.length < 5, `${watchSwaps.length} swaps for 5 writes`);
    assert.ok(watchSwaps.every((r) => r.outcome === 'switched'), 'no swap loaded a half-written file');
    assert.equal(w.host.status().plugin?.version, 'v6');
    assert.equal(await w.ask('y'), 'v6/alpha:2|y');
  } finally {
    await w.close();
  }
});

test('an editor-style atomic save (write a temp file, rename it over the entry) swaps once, cleanly', async () => {
  const w = await watched();
  try {
    assert.equal(await w.ask('a'), 'v1/alpha:1|a');
    const swapped = w.nextSwap();
    const tmp = path.join(w.p.dir, '.plugin.ts.swp');
    await seenByAWatcher(w.p.dir, w.p.entry, () => {
      writeFileSync(tmp, plugin('v2'));
      renameSync(tmp, w.p.entry);
    });
    const record = await swapped;
    assert.equal(record.outcome, 'switched');
    assert.equal(record.to, 'watched@v2');
    assert.deepEqual(w.swaps.map((r) => [r.trigger, r.outcome]), [['watch', 'switched']], 'one swap, no failed attempt');
    assert.equal(await w.ask('b'), 'v2/alpha:2|b');
  } finally {
    await w.close();
  }
});

test('a vim-style save (entry renamed to a backup, then written anew) swaps once, with no failed attempt', async () => {
  const w = await watched();
  try {
    assert.equal(await w.ask('a'), 'v1/alpha:1|a');
    const swapped = w.nextSwap();
    const backup = path.join(w.p.dir, 'plugin.ts~');
    await seenByAWatcher(w.p.dir, w.p.entry, () => {
      renameSync(w.p.entry, backup);
      writeFileSync(w.p.entry, plugin('v2'));
    });
    const record = await swapped;
    assert.equal(record.to, 'watched@v2');
    assert.deepEqual(w.swaps.map((r) => [r.trigger, r.outcome]), [['watch', 'switched']], 'the moment without an entry never loaded');
    assert.equal(await w.ask('b'), 'v2/alpha:2|b');
  } finally {
    await w.close();
  }
});
