/**
 * Issue 9, item 4: one client floods a plugin whose onMessage awaits 10 ms. The host stops reading its socket at
 * maxQueuedMessages (lossless backpressure), closes it with 1008 past maxQueuedBytes, keeps answering an unrelated
 * client, and drops (and counts) the backlog once the flooder is gone instead of working through it.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { type Host, createHost } from '../../src/index.js';
import { wsClient } from '../helpers/clients.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';
import { socketOf } from '../../src/internals/ws-internals.js';
import { MiB, Pinger, SLOW_PLUGIN, errorCodes, floodWs, rss, waitUntil } from './hostile-rig.js';

const MAX_QUEUED = 200;
const MAX_QUEUED_BYTES = 1 * MiB;
const FLOOD_MS = 3000;
// A read already under way when the socket is paused is still delivered: up to one 64 KiB chunk of 1 KB messages.
const QUEUE_BOUND = 2 * MAX_QUEUED + 100;

const dir = pluginDir(SLOW_PLUGIN);
let host: Host;
let codes: string[];
let wsUrl: string;
let tcpPort: number;

before(async () => {
  host = await createHost({
    plugin: dir.entry,
    logger: quietLogger,
    listen: [{ transport: 'ws' }, { transport: 'tcp', framing: 'lines' }],
    limits: { maxQueuedMessages: MAX_QUEUED, maxQueuedBytes: MAX_QUEUED_BYTES, pingInterval: 200, pongTimeout: 1000 },
  });
  codes = errorCodes(host);
  wsUrl = host.addresses()[0]!.url;
  tcpPort = host.addresses()[1]!.port;
});

after(async () => {
  await host.close();
  dir.remove();
});

/** Messages received and not yet handled, host-wide (the pinger's and the stats replies are handled at once). */
async function backlog(): Promise<number> {
  const s = host.status();
  const stats = await statsOf();
  return s.messages.in - s.messages.dropped - stats.flood - stats.pings - statsAsked;
}

let statsAsked = 0;
async function statsOf(): Promise<{ flood: number; pings: number }> {
  const c = await wsClient(wsUrl);
  statsAsked++;
  c.send('stats');
  const reply = JSON.parse(await c.inbox.next()) as { flood: number; pings: number };
  c.ws.close();
  await c.closed;
  return reply;
}


test('a WebSocket flood into a slow plugin pauses reading: backlog and RSS bounded, the pinger gets every reply, the backlog is dropped and counted at close', async () => {
  const pinger = await Pinger.start(wsUrl);
  const flooder = new WebSocket(wsUrl);
  await new Promise((resolve) => flooder.once('open', resolve));
  const rss0 = rss();
  let peakBacklog = 0;
  let peakRss = rss0;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, rss());
  }, 50);
  const frame = 'F'.repeat(1024);
  const sent = await floodWs(flooder, frame, FLOOD_MS);
  peakBacklog = await backlog();
  clearInterval(sampler);
  const lost = await pinger.stop();

  assert.ok(sent > 4 * QUEUE_BOUND, `the flooder sent ${sent} messages`);
  assert.ok(peakBacklog <= QUEUE_BOUND, `backlog ${peakBacklog} > ${QUEUE_BOUND}: reading was not paused`);
  assert.equal(lost, 0, 'the unrelated client lost replies');
  // The queue holds ~QUEUE_BOUND KB; 48 MiB is room for the test's own clients and V8's heap growth.
  assert.ok(peakRss - rss0 < 48 * MiB, `RSS grew by ${((peakRss - rss0) / MiB).toFixed(1)} MiB`);

  // The flooder goes: its backlog is dropped, not handled, and the connection leaves the table. Its close would wait,
  // unread, behind the bytes the kernel still holds for the paused socket; the next ping's write notices it
  // (docs/reliability.md).
  const before = host.status().messages.dropped;
  socketOf(flooder)!.resetAndDestroy();
  await waitUntil(() => host.status().connections === 0, 10_000, 'the flooder to leave the table');
  const s = host.status();
  assert.ok(s.messages.dropped > before, 'the backlog was not dropped');
  const stats = await statsOf();
  const handled = stats.flood + stats.pings + statsAsked;
  assert.equal(host.status().messages.in, handled + host.status().messages.dropped, 'every message was either handled or dropped');
});

test('a flood of large messages past maxQueuedBytes is closed with 1008 and HOTLINE_E_INBOUND_OVERFLOW', async () => {
  const pinger = await Pinger.start(wsUrl);
  const flooder = new WebSocket(wsUrl);
  await new Promise((resolve) => flooder.once('open', resolve));
  const closed = new Promise<number>((resolve) => flooder.once('close', (code) => resolve(code)));
  flooder.on('error', () => undefined);
  const dropped0 = host.status().messages.dropped;
  void floodWs(flooder, Buffer.alloc(64 * 1024, 1), 10_000);
  const code = await closed;
  assert.equal(code, 1008);
  assert.ok(codes.includes('HOTLINE_E_INBOUND_OVERFLOW'), `codes: ${codes.join(', ')}`);
  await waitUntil(() => host.status().connections === 1, 5000, 'the flooder to leave the table');
  assert.ok(host.status().messages.dropped > dropped0);
  assert.equal(await pinger.stop(), 0, 'the unrelated client lost replies');
});

test('a TCP line flood pauses reading too', async () => {
  const socket = net.connect(tcpPort, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.on('error', () => undefined);
  const line = 'F'.repeat(1023) + '\n';
  const chunk = line.repeat(64);
  const until = Date.now() + FLOOD_MS;
  let sent = 0;
  while (Date.now() < until) {
    if (socket.writableLength < MiB) {
      socket.write(chunk);
      sent += 64;
    } else {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    if (sent % 1024 === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  const b = await backlog();
  assert.ok(sent > 4 * QUEUE_BOUND, `the flooder sent ${sent} lines`);
  assert.ok(b <= QUEUE_BOUND, `backlog ${b} > ${QUEUE_BOUND}: reading was not paused`);
  // A plain TCP stream has nothing to probe with while paused: its close is seen once the bytes before it are read
  // (docs/reliability.md); the host's shutdown cuts it off.
  socket.resetAndDestroy();
});
