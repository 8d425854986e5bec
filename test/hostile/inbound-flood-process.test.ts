/**
 * Issue 9, item 4, against the real `hotline start` (supervisor and worker, default limits): a WebSocket flood of
 * 1 KB frames into a plugin whose onMessage awaits 10 ms. Before: the worker's RSS grew ~20 MB/s towards OOM. Now
 * reading pauses at maxQueuedMessages (1 000), the worker keeps its PID and its memory, the unrelated client gets
 * every reply, and the flooder's backlog is dropped and counted once it is gone.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, test } from 'node:test';
import WebSocket from 'ws';
import type { HostStatus } from '../../src/host/host.js';
import { socketOf } from '../../src/internals/ws-internals.js';
import { HotlineProcess, adminStatus } from '../e2e/hotline-process.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { MiB, Pinger, SLOW_PLUGIN, floodWs, rss, waitUntil } from './hostile-rig.js';

const dir = pluginDir(SLOW_PLUGIN);
let proc: HotlineProcess | undefined;

after(async () => {
  proc?.kill('SIGKILL');
  await proc?.exited;
  dir.remove();
});

test('hotline start: a flood into a slow plugin leaves the worker bounded, serving, and with the same PID', async () => {
  const admin = path.join(dir.dir, 'admin.sock');
  const started = await HotlineProcess.start(['start', dir.entry, '--port', '0', '--admin', admin], dir.dir);
  proc = started.proc;
  const url = started.ready.url;
  const s0 = await adminStatus<HostStatus>(admin, dir.dir);
  const rss0 = rss(s0.pid);
  const pinger = await Pinger.start(url);
  const flooder = new WebSocket(url);
  flooder.on('error', () => undefined);
  await new Promise((resolve) => flooder.once('open', resolve));
  let peak = rss0;
  const sampler = setInterval(() => (peak = Math.max(peak, rss(s0.pid))), 50);
  const sent = await floodWs(flooder, 'F'.repeat(1024), 4000);
  clearInterval(sampler);
  const mid = await adminStatus<HostStatus>(admin, dir.dir);
  const lost = await pinger.stop(15_000);

  assert.equal(lost, 0, 'the unrelated client lost replies');
  assert.equal(mid.pid, s0.pid, 'the worker restarted');
  // Received but unhandled stays near maxQueuedMessages (1 000 × 1 KB), however much the flooder sent.
  // 4 s of 10 ms handlers is at most ~400 flood messages handled; the rest of what it took is the queue.
  const bound = 2 * 1000 + 4000 / 10 + 200;
  assert.ok(sent > bound, `the flooder sent only ${sent}`);
  assert.ok(mid.messages.in < bound, `the worker took ${mid.messages.in} of ${sent}: reading was not paused`);
  assert.ok(peak - rss0 < 64 * MiB, `the worker's RSS grew by ${((peak - rss0) / MiB).toFixed(1)} MiB`);

  // Gone: noticed by the next ping's write (pingInterval, 30 s by default); what is queued then is dropped.
  socketOf(flooder)!.resetAndDestroy();
  let end = mid;
  await waitUntil(async () => (end = await adminStatus<HostStatus>(admin, dir.dir)).connections === 0, 60_000, 'the flooder to leave');
  assert.ok(end.messages.dropped > 0, 'the backlog was not dropped');
  assert.equal(end.pid, s0.pid);
});
