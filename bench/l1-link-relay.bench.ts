/**
 * L1 link relay (issue 15): a TCP feed streams numbered lines; the plugin relays each to every WS client. Across 10
 * swaps, count the feed's reconnects and the messages clients lost. Same run, same load, two plugins:
 * - hotline: the feed is a link (`ctx.link`), owned by the host, kept across swaps;
 * - baseline: the plugin opens its own socket in `init`/`migrate` and closes it in `dispose`, the only way without
 *   links: every swap reconnects, and what the feed sends meanwhile is lost.
 * The feed produces on its own clock whether or not a peer is connected, as a market-data feed does.
 *
 *   node --import tsx bench/l1-link-relay.bench.ts [--quick]
 */
import net from 'node:net';
import pino from 'pino';
import WebSocket from 'ws';
import { createHost } from '../src/index.js';
import { tempDir } from './lib/plugins.js';
import { benchArgs, finish } from './lib/report.js';

const args = benchArgs();
const clients = args.quick ? 100 : 1000;
const swaps = 10;
const perTick = 2;

function linkPlugin(tag: string, url: string): string {
  return `
import { definePlugin } from 'hotline';
const OPTS = { url: ${JSON.stringify(url)}, framing: 'lines' };
export default definePlugin({
  name: 'relay', version: '${tag}', api: 1,
  init(ctx) { ctx.link('feed', OPTS); return {}; },
  migrate(prev, ctx) { ctx.link('feed', OPTS); return prev.state; },
  onLinkMessage(link, data, ctx) { ctx.broadcast(data); },
  onMessage() {},
});
`;
}

function ownSocketPlugin(tag: string, port: number): string {
  return `
import { definePlugin } from 'hotline';
import net from 'node:net';
let socket;
function open(ctx) {
  socket = net.connect(${port}, '127.0.0.1');
  let buf = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk) => {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf('\\n')) !== -1) { ctx.broadcast(buf.slice(0, nl)); buf = buf.slice(nl + 1); }
  });
  socket.on('error', () => {});
}
export default definePlugin({
  name: 'relay', version: '${tag}', api: 1,
  init(ctx) { open(ctx); return {}; },
  migrate(prev, ctx) { open(ctx); return prev.state; },
  dispose() { socket.destroy(); },
  onMessage() {},
});
`;
}

interface Feed {
  port: number;
  accepted: number;
  start(): void;
  stop(): number;
  close(): Promise<void>;
}

async function startFeed(): Promise<Feed> {
  const peers = new Set<net.Socket>();
  let accepted = 0;
  let seq = 0;
  let timer: NodeJS.Timeout | undefined;
  const server = net.createServer((s) => {
    accepted++;
    peers.add(s);
    s.on('error', () => undefined);
    s.on('close', () => peers.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const tick = () => {
    for (let i = 0; i < perTick; i++) {
      const line = `${seq++}\n`;
      for (const p of peers) p.write(line);
    }
    timer = setTimeout(tick, 1);
  };
  return {
    port: (server.address() as net.AddressInfo).port,
    get accepted() {
      return accepted;
    },
    start: () => void (timer = setTimeout(tick, 0)),
    stop: () => (clearTimeout(timer), seq),
    close: async () => {
      for (const p of peers) p.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

async function measure(kind: 'link' | 'own'): Promise<{ reconnects: number; lost: number; duplicated: number; sent: number; swapMs: number }> {
  const feed = await startFeed();
  const dir = tempDir(`l1-${kind}`);
  const source = (tag: string) => (kind === 'link' ? linkPlugin(tag, `tcp://127.0.0.1:${feed.port}`) : ownSocketPlugin(tag, feed.port));
  const entry = dir.write('plugin.ts', source('v0'));
  const host = await createHost({ plugin: entry, listen: [{ transport: 'ws' }], logger: pino({ level: 'silent' }), probation: false });
  const received = new Array<number>(clients).fill(0);
  // Which feed numbers each client got, so duplicates are told from losses.
  const seen = Array.from({ length: clients }, () => new Uint8Array(1 << 18));
  let duplicated = 0;
  const sockets: WebSocket[] = [];
  try {
    const url = host.addresses()[0]!.url;
    for (let i = 0; i < clients; i++) {
      const ws = new WebSocket(url);
      ws.on('message', (d) => {
        const n = Number(String(d));
        if (seen[i]![n]) duplicated++;
        else {
          seen[i]![n] = 1;
          received[i]!++;
        }
      });
      ws.on('error', () => undefined);
      sockets.push(ws);
      await new Promise((r) => ws.once('open', r));
    }
    // The first connect of each plugin's feed socket is not a reconnect.
    const deadline = Date.now() + 10_000;
    while (feed.accepted < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    feed.start();
    const t0 = performance.now();
    for (let i = 1; i <= swaps; i++) {
      await new Promise((r) => setTimeout(r, 20));
      dir.write('plugin.ts', source(`v${i}`));
      await host.reload();
    }
    const swapMs = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 20));
    const sent = feed.stop();
    // Wait for the relay to go quiet: every client has all, or nothing arrived for 1 s.
    let last = -1;
    let quietSince = Date.now();
    const total = () => received.reduce((a, b) => a + b, 0);
    while (total() < sent * clients && Date.now() - quietSince < 1000) {
      await new Promise((r) => setTimeout(r, 20));
      const now = total();
      if (now !== last) {
        last = now;
        quietSince = Date.now();
      }
    }
    // Messages the feed produced after the first connect that a client never got.
    const lost = received.reduce((a, n) => a + Math.max(0, sent - n), 0);
    return { reconnects: feed.accepted - 1, lost, duplicated, sent, swapMs };
  } finally {
    for (const ws of sockets) ws.terminate();
    await host.close();
    await feed.close();
    dir.remove();
  }
}

const link = await measure('link');
console.log(`link: ${link.reconnects} reconnects, ${link.lost} lost, ${link.duplicated} duplicated of ${link.sent} × ${clients}`);
const own = await measure('own');
console.log(`own socket: ${own.reconnects} reconnects, ${own.lost} lost, ${own.duplicated} duplicated of ${own.sent} × ${clients}`);
finish(args, {
  id: 'L1',
  title: 'link relay across swaps',
  quick: args.quick,
  rows: [
    {
      figure: `L1 feed reconnects across ${swaps} swaps (${clients} WS clients)`,
      hotline: `${link.reconnects}`,
      baseline: `own socket: ${own.reconnects}`,
      ratio: '',
      target: '0',
      met: link.reconnects === 0,
    },
    {
      figure: `L1 relayed messages lost (feed × clients)`,
      hotline: `${link.lost} of ${(link.sent * clients).toLocaleString('en-US')}`,
      baseline: `own socket: ${own.lost.toLocaleString('en-US')} of ${(own.sent * clients).toLocaleString('en-US')}`,
      ratio: '',
      target: '0',
      met: link.lost === 0,
    },
    {
      figure: `L1 relayed messages duplicated`,
      hotline: `${link.duplicated}`,
      baseline: `own socket: ${own.duplicated.toLocaleString('en-US')}`,
      ratio: '',
      target: '0',
      met: link.duplicated === 0,
    },
  ],
  zeroLoss: [
    { name: 'L1 link reconnects', count: link.reconnects },
    { name: 'L1 link messages lost', count: link.lost },
    { name: 'L1 link messages duplicated', count: link.duplicated },
  ],
  notes: [
    `a TCP feed of ${perTick} numbered lines per ms timer tick, broadcast to ${clients} WS clients in the same process as the host; ${swaps} swaps 20 ms apart.`,
    'the baseline opens its new socket before the old version\'s dispose closes the old one, so a feed that sends to every peer duplicates rather than loses; a feed that serves one subscriber per account would lose instead.',
    `swaps took ${Math.round(link.swapMs)} ms (link) and ${Math.round(own.swapMs)} ms (own socket) in all, with the 20 ms gaps.`,
  ],
});
