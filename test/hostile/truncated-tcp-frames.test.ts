/**
 * Issue 9, item 5: many TCP sockets each leave a length frame or a line unfinished. Before, 1,000 sockets × (1 MiB − 1)
 * took RSS from 70 MB to 1.18 GB and kept it. Now the bytes held in partial frames stay under maxIncompleteBytes
 * (the sockets that would exceed it are closed, HOTLINE_E_INCOMPLETE_BUDGET), the rest are closed after frameTimeout
 * without progress (HOTLINE_E_FRAME_TIMEOUT), and the memory goes back after close.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { pluginDir } from '../helpers/plugin-dir.js';
import { ChildHost, MiB, Pinger, SLOW_PLUGIN, rss, waitUntil } from './hostile-rig.js';

const SOCKETS = 200; // per framing
const PARTIAL = 256 * 1024; // bytes each socket sends of its never-finished frame
const BUDGET = 8 * MiB;
const FRAME_TIMEOUT = 500;

const dir = pluginDir(SLOW_PLUGIN);
let host: ChildHost;

before(async () => {
  host = await ChildHost.start({
    plugin: dir.entry,
    listen: [{ transport: 'ws' }, { transport: 'tcp', framing: 'length' }, { transport: 'tcp', framing: 'lines' }],
    limits: { maxIncompleteBytes: BUDGET, frameTimeout: FRAME_TIMEOUT, maxConnections: 2 * SOCKETS + 10 },
  });
});

after(async () => {
  await host.stop();
  dir.remove();
});

/** Open `n` sockets to `port` and write `bytes` on each; resolves with them once all are connected and written. */
async function truncated(port: number, n: number, bytes: Buffer): Promise<{ sockets: net.Socket[]; closed: Promise<void[]> }> {
  const sockets: net.Socket[] = [];
  const closes: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    closes.push(new Promise((resolve) => s.once('close', () => resolve())));
    await new Promise((resolve) => s.once('connect', resolve));
    s.write(bytes);
    sockets.push(s);
  }
  return { sockets, closed: Promise.all(closes) };
}

test('truncated length frames and lines from many sockets: budget and frame timeout close them all, RSS bounded and returned', async () => {
  const pinger = await Pinger.start(host.addresses[0]!.url);
  const rss0 = rss(host.pid);
  let peak = rss0;
  const sampler = setInterval(() => (peak = Math.max(peak, rss(host.pid))), 20);

  // A length header for a frame of (maxPayload − 1) bytes, then only part of it; a line that never ends.
  const frame = Buffer.alloc(4 + PARTIAL, 0x61);
  frame.writeUInt32BE(1024 * 1024 - 1, 0);
  const line = Buffer.alloc(PARTIAL, 0x61);
  const a = await truncated(host.addresses[1]!.port, SOCKETS, frame);
  const b = await truncated(host.addresses[2]!.port, SOCKETS, line);
  // Every socket is closed by the host: none sends another byte.
  await waitUntil(async () => (await Promise.race([Promise.all([a.closed, b.closed]).then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 50))])), 30_000, 'the host to close every truncated socket');
  clearInterval(sampler);
  await waitUntil(async () => (await host.status()).connections === 1, 10_000, 'only the pinger to remain');
  const lost = await pinger.stop();

  const budget = host.count('HOTLINE_E_INCOMPLETE_BUDGET');
  const timeout = host.count('HOTLINE_E_FRAME_TIMEOUT');
  assert.equal(budget + timeout, 2 * SOCKETS, `codes: ${budget} budget, ${timeout} timeout`);
  // 100 MiB were sent, at most BUDGET of it held at once: most sockets find the budget spent (those that time out
  // meanwhile make room for a few more).
  assert.ok(budget > SOCKETS, `only ${budget} closed by the budget`);
  assert.ok(timeout > 0, 'none was closed by the frame timeout');
  assert.equal(lost, 0, 'the unrelated client lost replies');
  // Peak: the budget, plus the socket read buffers and V8 garbage of 100 MiB going through (read in 64 KiB chunks).
  assert.ok(peak - rss0 < 4 * BUDGET + 48 * MiB, `RSS grew by ${((peak - rss0) / MiB).toFixed(1)} MiB at the peak`);
  // Nothing may still hold the memory: after a full GC in the host (ChildHost.collect), RSS must come back down.
  let back = rss(host.pid) - rss0;
  await waitUntil(
    async () => {
      await host.collect();
      return (back = rss(host.pid) - rss0) < BUDGET + 32 * MiB;
    },
    10_000,
    'RSS to come back',
  ).catch(() => undefined);
  console.log(`RSS: start ${(rss0 / MiB).toFixed(0)} MiB, peak +${((peak - rss0) / MiB).toFixed(1)} MiB, after close +${(back / MiB).toFixed(1)} MiB`);
  assert.ok(back < BUDGET + 32 * MiB, `RSS still ${(back / MiB).toFixed(1)} MiB over the start after close`);
});
