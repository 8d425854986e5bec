/**
 * Issue 9, item 5: WebSocket clients that start a fragmented message and never finish it (before: 500 sockets took
 * 605 MB). The fragments held stay under maxIncompleteBytes (HOTLINE_E_INCOMPLETE_BUDGET closes the socket that would
 * exceed it), a message that stops growing is closed after frameTimeout (HOTLINE_E_FRAME_TIMEOUT) even if the client
 * keeps pinging, every close is 1008, and the memory goes back.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { pluginDir } from '../helpers/plugin-dir.js';
import { ChildHost, MiB, Pinger, SLOW_PLUGIN, rss, waitUntil } from './hostile-rig.js';

const SOCKETS = 300;
const FRAGMENT = 64 * 1024;
const FRAGMENTS = 4; // 256 KiB held per socket, 75 MiB sent in all
const BUDGET = 8 * MiB;
const FRAME_TIMEOUT = 500;

const dir = pluginDir(SLOW_PLUGIN);
let host: ChildHost;

before(async () => {
  host = await ChildHost.start({
    plugin: dir.entry,
    listen: [{ transport: 'ws' }],
    limits: { maxIncompleteBytes: BUDGET, frameTimeout: FRAME_TIMEOUT, maxConnections: SOCKETS + 10 },
  });
});

after(async () => {
  await host.stop();
  dir.remove();
});

test('unfinished fragmented messages from many sockets: closed with 1008 by the budget or the frame timeout, RSS bounded and returned', async () => {
  const url = host.addresses[0]!.url;
  const pinger = await Pinger.start(url);
  const rss0 = rss(host.pid);
  let peak = rss0;
  const sampler = setInterval(() => (peak = Math.max(peak, rss(host.pid))), 20);
  const fragment = Buffer.alloc(FRAGMENT, 0x62);
  const codes: Promise<number>[] = [];
  const pingers: NodeJS.Timeout[] = [];
  for (let i = 0; i < SOCKETS; i++) {
    const ws = new WebSocket(url);
    ws.on('error', () => undefined);
    codes.push(new Promise((resolve) => ws.once('close', (code) => resolve(code))));
    await new Promise((resolve) => ws.once('open', resolve));
    for (let f = 0; f < FRAGMENTS; f++) ws.send(fragment, { fin: false });
    // A ping between fragments is not progress on the message: the frame timeout still applies.
    pingers.push(setInterval(() => ws.readyState === WebSocket.OPEN && ws.ping(), 100));
  }
  const closeCodes = await Promise.race([
    Promise.all(codes),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error('some fragmented sockets were never closed')), 30_000)),
  ]).finally(() => pingers.forEach(clearInterval));
  clearInterval(sampler);
  const lost = await pinger.stop();

  assert.deepEqual([...new Set(closeCodes)], [1008]);
  const budget = host.count('HOTLINE_E_INCOMPLETE_BUDGET');
  const timeout = host.count('HOTLINE_E_FRAME_TIMEOUT');
  assert.equal(budget + timeout, SOCKETS, `codes: ${budget} budget, ${timeout} timeout`);
  assert.ok(budget > 0 && timeout > 0, `codes: ${budget} budget, ${timeout} timeout`);
  assert.equal(lost, 0, 'the unrelated client lost replies');
  assert.ok(peak - rss0 < 4 * BUDGET + 48 * MiB, `RSS grew by ${((peak - rss0) / MiB).toFixed(1)} MiB at the peak`);
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
