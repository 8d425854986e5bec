/**
 * Issue 9, item 5: a TCP peer that trickles a length frame a few bytes per packet. Each read is its own small
 * buffer, and the decoder used to keep one Buffer per read: the bytes counted against the limits were a small
 * fraction of what the host held (500,000 one-byte reads: 0.5 MB counted, 229 MB of RSS; the deterministic check
 * is in test/framing/framing.test.ts). Real sockets, a real host in a child process: the trickling peer is counted
 * byte for byte, the host's memory follows what it counts, it survives with the same PID, an unrelated client gets
 * every reply, and the frame timeout closes the peer with its code once it stops. How many reads the host makes of
 * it depends on the machine, so this test bounds the memory rather than tells the two decoders apart.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { pluginDir } from '../helpers/plugin-dir.js';
import { ChildHost, MiB, Pinger, SLOW_PLUGIN, rss, waitUntil } from './hostile-rig.js';

const WRITES = 200_000;
const BYTES_PER_WRITE = 1;
const FRAME_TIMEOUT = 1000;

const dir = pluginDir(SLOW_PLUGIN);
let host: ChildHost;

before(async () => {
  host = await ChildHost.start({
    plugin: dir.entry,
    listen: [{ transport: 'ws' }, { transport: 'tcp', framing: 'length' }],
    limits: { frameTimeout: FRAME_TIMEOUT },
  });
});

after(async () => {
  await host.stop();
  dir.remove();
});

test('a length frame trickled a few bytes per packet is counted byte for byte, memory follows it, and the frame timeout ends it', async () => {
  const pinger = await Pinger.start(host.addresses[0]!.url);
  const pid = host.pid;
  const rss0 = rss(pid);
  const peer = net.connect(host.addresses[1]!.port, '127.0.0.1');
  peer.setNoDelay(true);
  peer.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => peer.once('close', () => resolve()));
  await new Promise((resolve) => peer.once('connect', resolve));
  const header = Buffer.alloc(4);
  header.writeUInt32BE(1024 * 1024 - 1);
  peer.write(header);
  // One small packet per turn of this process's loop, so the host reads many of them one by one.
  const piece = Buffer.alloc(BYTES_PER_WRITE, 0x61);
  for (let i = 0; i < WRITES; i++) {
    peer.write(piece);
    if (i % 4 === 3) await new Promise((resolve) => setImmediate(resolve));
  }
  const sent = 4 + WRITES * BYTES_PER_WRITE;
  await waitUntil(async () => (await host.status()).partialFrames.bytes === sent, 20_000, 'the host to hold every byte sent');
  const held = rss(pid) - rss0;
  // 200 KB held. Kept as a Buffer per read, the reads would be tens of megabytes of heap; copied into 16 KiB parts, the
  // growth is what the host's own traffic costs (V8, the pinger), far below that.
  assert.ok(held < 24 * MiB, `RSS grew ${(held / MiB).toFixed(1)} MiB holding ${sent} bytes of one partial frame`);

  // The peer goes quiet: the frame timeout closes it, with its code.
  await waitUntil(async () => (await Promise.race([closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 50))])), 20_000, 'the host to close the quiet peer');
  await waitUntil(() => host.count('HOTLINE_E_FRAME_TIMEOUT') === 1, 5_000, 'HOTLINE_E_FRAME_TIMEOUT reported');
  const status = await host.status();
  assert.equal(status.partialFrames.bytes, 0, 'nothing held after the close');
  assert.equal(status.pid, pid, 'same host process');
  assert.equal(await pinger.stop(), 0, 'the unrelated client lost replies');
});
