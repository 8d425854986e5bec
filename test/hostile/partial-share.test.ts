/**
 * Issue 9, R2: sockets of one address that keep partial frames open, reconnecting as they are closed, made the host
 * read every byte they resent: 50 × 256 KiB every frameTimeout, each byte kept in a read buffer and a copy until V8's
 * next full GC, 9 of them in 10 s. `maxIncompleteBytesPerIp` holds the address' sockets back, unread, once its
 * partial frames pass the share: the host reads about the share, not what the address sends. Real sockets, a real
 * host in a child process; the attackers from 127.0.0.7, the legitimate traffic from other addresses.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { pluginDir } from '../helpers/plugin-dir.js';
import { ChildHost, MiB, Pinger, SLOW_PLUGIN, waitUntil } from './hostile-rig.js';

const SOCKETS = 20;
const PARTIAL = 256 * 1024;
const SHARE = 1 * MiB;
/** The most a socket reads before it is held back: one read of Node's (64 KiB). */
const READ = 64 * 1024;
const FRAME_TIMEOUT = 1000;

const dir = pluginDir(SLOW_PLUGIN);
let host: ChildHost;

before(async () => {
  host = await ChildHost.start({
    plugin: dir.entry,
    listen: [{ transport: 'ws' }, { transport: 'tcp', framing: 'length' }],
    limits: { maxIncompleteBytesPerIp: SHARE, frameTimeout: FRAME_TIMEOUT, maxIncompleteBytes: 64 * MiB },
  });
});

after(async () => {
  await host.stop();
  dir.remove();
});

function connect(port: number, localAddress: string): Promise<net.Socket> {
  const s = net.connect({ port, host: '127.0.0.1', localAddress });
  s.on('error', () => undefined);
  return new Promise((resolve) => s.once('connect', () => resolve(s)));
}

/** A length frame of `size` bytes, of which only `sent` are written (all of it when equal). */
function frame(size: number, sent = size): Buffer {
  const b = Buffer.alloc(4 + sent, 0x61);
  b.writeUInt32BE(size, 0);
  return b;
}

test('one address past its share of partial frames is held back, unread, while other addresses are served', async () => {
  const pinger = await Pinger.start(host.addresses[0]!.url);
  const port = host.addresses[1]!.port;
  const closed: Promise<void>[] = [];
  for (let i = 0; i < SOCKETS; i++) {
    const s = await connect(port, '127.0.0.7');
    closed.push(new Promise((resolve) => s.once('close', () => resolve())));
    s.write(frame(MiB - 1, PARTIAL));
  }
  // 5 MiB sent from the address: read are the share and one read for each socket held back, never much more.
  let peak = 0;
  let heldBack = 0;
  await waitUntil(
    async () => {
      const p = (await host.status()).partialFrames;
      peak = Math.max(peak, p.bytes);
      heldBack = Math.max(heldBack, p.heldBack);
      return p.heldBackTotal >= SOCKETS / 2;
    },
    10_000,
    'sockets of the address to be held back',
  );
  assert.ok(heldBack > 0, 'none was held back');

  // Another address is not held back: a 512 KiB frame, sent in one go, is read and handled while the share is full.
  const good = await connect(port, '127.0.0.8');
  const before = (await host.status()).messages.in;
  good.write(frame(512 * 1024));
  await waitUntil(async () => (await host.status()).messages.in > before, 10_000, 'the other address\' frame to be handled');
  good.destroy();

  // The attackers' frames never complete: each times out, held back or not, and is closed (HOTLINE_E_FRAME_TIMEOUT).
  await waitUntil(async () => (await Promise.race([Promise.all(closed).then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 50))])), 30_000, 'every partial frame to time out');
  const p = (await host.status()).partialFrames;
  peak = Math.max(peak, p.bytes);
  assert.equal(host.count('HOTLINE_E_FRAME_TIMEOUT'), SOCKETS);
  assert.deepEqual({ bytes: p.bytes, holders: p.holders, heldBack: p.heldBack }, { bytes: 0, holders: 0, heldBack: 0 });
  assert.ok(peak <= SHARE + SOCKETS * READ, `the address held ${(peak / MiB).toFixed(2)} MiB at its peak (share ${SHARE / MiB} MiB; ${((SOCKETS * PARTIAL) / MiB).toFixed(0)} MiB sent)`);
  await pinger.stopAndCheck();
});

test('a socket held back is read again once the address is within its share: its complete frame is handled, none lost', async () => {
  const port = host.addresses[1]!.port;
  // Three stalled sockets fill the share (3 × 400 KiB > 1 MiB); the fourth, sent whole, waits behind them.
  const stalled: net.Socket[] = [];
  for (let i = 0; i < 3; i++) {
    const s = await connect(port, '127.0.0.9');
    s.write(frame(MiB - 1, 400 * 1024));
    stalled.push(s);
  }
  await waitUntil(async () => (await host.status()).partialFrames.bytes >= SHARE, 10_000, 'the share to fill');
  const total0 = (await host.status()).partialFrames.heldBackTotal;
  const waiting = await connect(port, '127.0.0.9');
  const in0 = (await host.status()).messages.in;
  waiting.write(frame(512 * 1024));
  await waitUntil(async () => (await host.status()).partialFrames.heldBackTotal > total0, 10_000, 'the fourth to be held back');
  // One stalled socket goes away: the share frees, the fourth is released, read, and its frame handled.
  stalled[0]!.destroy();
  await waitUntil(async () => (await host.status()).messages.in > in0, 10_000, 'the held-back frame to be handled');
  for (const s of [...stalled, waiting]) s.destroy();
  await waitUntil(async () => (await host.status()).partialFrames.holders === 0, 10_000, 'no partial frame left');
});
