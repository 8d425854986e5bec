/**
 * R2 hostile clients: normal clients' reply latency and loss with one hostile client of each kind running against
 * the same host, next to a clean run measured in the same process (issue 9). The hostile kinds:
 *   - flood: one WebSocket writing 1 KB frames as fast as the host takes them, into a handler that awaits 5 ms;
 *   - truncated: TCP length frames announcing (1 MiB − 1) bytes, 256 KiB sent, never finished (50 sockets, reopened);
 *   - fragments: WebSocket fragmented messages of 256 KiB never finished (50 sockets, reopened);
 *   - hello-drop: `hotline.v1` session handshakes, hello then gone, 20 at a time.
 * The host's peak RSS is sampled from /proc; its CPU time per normal reply comes from the host itself.
 *
 *   node --import tsx bench/r2-hostile.bench.ts [--quick]
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { LoadGroup, type LoadResult } from './load-client.js';
import { tempDir } from './lib/plugins.js';
import { forkTs, nextMessage, ofType, stopChild } from './lib/processes.js';
import { benchArgs, finish } from './lib/report.js';
import { ms, ratio } from './lib/stats.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const args = benchArgs();
const connections = args.quick ? 100 : 1000;
const durationMs = args.quick ? 3000 : 10_000;
const rate = args.quick ? 500 : 2000;
const MiB = 1024 * 1024;
// The limits R2 runs with: defaults except a short frame timeout, so stalled frames are closed within a run.
const LIMITS = { maxQueuedMessages: 1000, maxQueuedBytes: 16 * MiB, maxIncompleteBytes: 64 * MiB, frameTimeout: 2000 };
const PARTIAL = 256 * 1024;
const HOLDERS = 50;

/** Normal clients get an echo; the flood (text starting with F) is handled slowly and not answered. */
const PLUGIN = `
import { definePlugin } from 'hotline';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export default definePlugin({
  name: 'r2', version: '1.0.0', api: 1,
  init: () => ({}),
  onMessage(conn, data) {
    if (typeof data === 'string' && data.charCodeAt(0) === 70) return sleep(5);
    conn.send(data);
  },
});
`;

interface Status {
  type: 'status';
  connections: number;
  messages: { in: number; out: number; dropped: number };
  cpuMs: number;
}

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

async function status(child: ChildProcess): Promise<Status> {
  child.send({ type: 'status' });
  return nextMessage(child, ofType<Status>('status'), 10_000, 'status');
}

/** The four hostile clients, each a loop that runs until stop(). */
class Hostiles {
  #stopped = false;
  #sockets = new Set<net.Socket | WebSocket>();
  #loops: Promise<void>[] = [];
  counts = { flooded: 0, truncated: 0, fragmented: 0, helloDrops: 0 };

  constructor(wsUrl: string, tcpUrl: string) {
    const tcp = new URL(tcpUrl);
    this.#loops.push(this.#flood(wsUrl));
    for (let i = 0; i < HOLDERS; i++) this.#loops.push(this.#truncated(Number(tcp.port)), this.#fragments(wsUrl));
    for (let i = 0; i < 20; i++) this.#loops.push(this.#helloDrop(wsUrl));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const s of this.#sockets) {
      if (s instanceof net.Socket) s.destroy();
      else s.terminate();
    }
    await Promise.all(this.#loops);
  }

  async #flood(url: string): Promise<void> {
    const frame = 'F'.repeat(1024);
    while (!this.#stopped) {
      const ws = await this.#open(url).catch(() => undefined);
      if (!ws) {
        await sleep(10);
        continue;
      }
      while (!this.#stopped && ws.readyState === WebSocket.OPEN) {
        for (let n = 0; n < 256 && ws.bufferedAmount < MiB; n++, this.counts.flooded++) ws.send(frame);
        await sleep(1);
      }
      ws.terminate();
    }
  }

  async #truncated(port: number): Promise<void> {
    const frame = Buffer.alloc(4 + PARTIAL, 0x61);
    frame.writeUInt32BE(MiB - 1, 0);
    while (!this.#stopped) {
      const s = net.connect(port, '127.0.0.1');
      this.#sockets.add(s);
      s.on('error', () => undefined);
      const closed = new Promise((resolve) => s.once('close', resolve));
      s.once('connect', () => s.write(frame));
      this.counts.truncated++;
      await closed;
      this.#sockets.delete(s);
      await sleep(10);
    }
  }

  async #fragments(url: string): Promise<void> {
    const part = Buffer.alloc(64 * 1024, 0x62);
    while (!this.#stopped) {
      const ws = await this.#open(url).catch(() => undefined);
      if (!ws) {
        await sleep(10);
        continue;
      }
      const closed = new Promise((resolve) => ws.once('close', resolve));
      for (let i = 0; i < PARTIAL / part.length; i++) ws.send(part, { fin: false });
      this.counts.fragmented++;
      await closed;
      await sleep(10);
    }
  }

  async #helloDrop(url: string): Promise<void> {
    while (!this.#stopped) {
      const ws = await this.#open(url, 'hotline.v1').catch(() => undefined);
      if (!ws) {
        await sleep(10);
        continue;
      }
      ws.send(JSON.stringify({ t: 'hello', v: 1, token: null, rx: 0 }));
      ws.terminate();
      this.counts.helloDrops++;
      await sleep(5);
    }
  }

  #open(url: string, protocol?: string): Promise<WebSocket> {
    const ws = new WebSocket(url, protocol, { perMessageDeflate: false });
    this.#sockets.add(ws);
    ws.on('error', () => undefined);
    ws.once('close', () => this.#sockets.delete(ws));
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(ws));
      ws.once('close', () => reject(new Error('closed before open')));
    });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

interface Run {
  load: LoadResult;
  peakRss: number;
  cpuPerReplyUs: number;
  dropped: number;
}

async function measure(child: ChildProcess, pid: number, load: LoadGroup, hostile: Hostiles | undefined): Promise<Run> {
  const s0 = await status(child);
  let peakRss = rssOf(pid);
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssOf(pid))), 100);
  const r = await load.run({ mode: 'rate', rate, durationMs, payload: 32 });
  clearInterval(sampler);
  await hostile?.stop();
  const s1 = await status(child);
  // The host's CPU over the run, per normal reply (the hostile run's includes the work the hostile clients cost).
  return { load: r, peakRss, cpuPerReplyUs: ((s1.cpuMs - s0.cpuMs) * 1000) / Math.max(1, r.received), dropped: s1.messages.dropped - s0.messages.dropped };
}

const dir = tempDir('r2');
let server: ChildProcess | undefined;
try {
  const plugin = dir.write('plugin.ts', PLUGIN);
  server = forkTs(path.join(HERE, 'servers/hotline-server.ts'), [JSON.stringify({ plugin, tcpLength: true, sessions: true, limits: LIMITS })]);
  const ready = await nextMessage(server, ofType<{ type: 'ready'; urls: string[]; pid: number }>('ready'), 60_000, 'hotline-server');
  const [wsUrl, tcpUrl] = ready.urls as [string, string];
  const rss0 = rssOf(ready.pid);
  const load = await LoadGroup.connect({ url: wsUrl, connections, processes: 2 });
  let clean: Run;
  let hostile: Run;
  let counts: Hostiles['counts'];
  try {
    clean = await measure(server, ready.pid, load, undefined);
    console.log(`clean: p99 ${ms(clean.load.latency.p99)}, lost ${clean.load.lost}, peak RSS ${(clean.peakRss / MiB).toFixed(0)} MiB`);
    const h = new Hostiles(wsUrl, tcpUrl);
    counts = h.counts;
    // Let the hostile clients reach their steady state (the flood paused, the partial-frame budget full) first.
    await sleep(1000);
    hostile = await measure(server, ready.pid, load, h);
    console.log(`hostile: p99 ${ms(hostile.load.latency.p99)}, lost ${hostile.load.lost}, peak RSS ${(hostile.peakRss / MiB).toFixed(0)} MiB`);
  } finally {
    await load.close();
  }
  const rssBound = rss0 + LIMITS.maxIncompleteBytes + LIMITS.maxQueuedBytes + 64 * MiB;
  const p99Ratio = hostile.load.latency.p99 / clean.load.latency.p99;
  finish(args, {
    id: 'R2',
    title: 'hostile clients',
    quick: args.quick,
    rows: [
      {
        figure: `R2 normal clients' p99 reply latency, ${connections} conns at ${rate} msg/s, with the 4 hostile clients`,
        hotline: ms(hostile.load.latency.p99),
        baseline: `clean run: ${ms(clean.load.latency.p99)}`,
        ratio: ratio(hostile.load.latency.p99, clean.load.latency.p99),
        target: '≤ 2× of clean',
        met: p99Ratio <= 2,
      },
      {
        figure: "R2 normal clients' replies lost",
        hotline: String(hostile.load.lost),
        baseline: `clean run: ${clean.load.lost}`,
        ratio: '',
        target: '0',
        met: hostile.load.lost === 0,
      },
      {
        figure: 'R2 host peak RSS',
        hotline: `${(hostile.peakRss / MiB).toFixed(0)} MiB`,
        baseline: `clean run: ${(clean.peakRss / MiB).toFixed(0)} MiB`,
        ratio: ratio(hostile.peakRss, clean.peakRss),
        target: `≤ start + maxIncompleteBytes + maxQueuedBytes + 64 MiB (${(rssBound / MiB).toFixed(0)} MiB)`,
        met: hostile.peakRss <= rssBound,
      },
      {
        figure: 'R2 host CPU per normal reply',
        hotline: `${hostile.cpuPerReplyUs.toFixed(0)} µs`,
        baseline: `clean run: ${clean.cpuPerReplyUs.toFixed(0)} µs`,
        ratio: ratio(hostile.cpuPerReplyUs, clean.cpuPerReplyUs),
        target: '',
      },
    ],
    zeroLoss: [{ name: "R2 normal clients' replies lost with hostile clients", count: hostile.load.lost }],
    notes: [
      `hostile clients during the run: ${counts.flooded} flood frames written, ${counts.truncated} truncated TCP frames, ${counts.fragmented} unfinished fragmented messages, ${counts.helloDrops} hello-then-drop handshakes; host dropped ${hostile.dropped} flood messages.`,
      `limits: maxQueuedMessages ${LIMITS.maxQueuedMessages}, maxQueuedBytes 16 MiB, maxIncompleteBytes 64 MiB, frameTimeout ${LIMITS.frameTimeout} ms (default 30 000, shortened so stalled frames turn over within a run); ${durationMs / 1000} s per run; host RSS at start ${(rss0 / MiB).toFixed(0)} MiB.`,
      'host, 2 load processes and the hostile clients (in the bench process) share the same 2 cores.',
    ],
  });
} finally {
  if (server) await stopChild(server);
  dir.remove();
}
