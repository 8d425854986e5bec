/**
 * R2 hostile clients: normal clients' reply latency and loss with one hostile client of each kind running against
 * the same host, next to a clean run measured in the same process (issue 9). The hostile kinds:
 *   - flood: one WebSocket writing 1 KB frames as fast as the host takes them, into a handler that awaits 5 ms;
 *   - truncated: TCP length frames announcing (1 MiB − 1) bytes, 256 KiB sent, never finished (50 sockets, reopened);
 *   - fragments: WebSocket fragmented messages of 256 KiB never finished (50 sockets, reopened);
 *   - hello-drop: `hotline.v1` session handshakes, hello then gone, 20 at a time.
 * Each kind comes from its own loopback address (127.0.1.1-4), as one hostile client would, and the normal clients
 * from 40 others (127.0.0.2-41). R2 runs twice, each time next to its own clean run: with the per-IP limits that
 * docs/reliability.md suggests for a host exposed directly to the internet (the row with the target), and with the
 * defaults (per-IP off: for a host behind a proxy, which has to rate-limit there).
 * The host's peak RSS is sampled from /proc; its CPU time per normal reply comes from the host itself.
 *
 *   node --import tsx bench/r2-hostile.bench.ts [--quick]
 *   R2_ONLY=flood|truncated|fragments|hello (or several, comma-separated) ... runs those kinds alone, with per-IP limits only (to find which kind costs;
 *   its table is not a figure of record); R2_HOST_FLAGS='--cpu-prof --cpu-prof-dir=DIR' passes node flags to the host;
 *   R2_RATE=N tries another handshakeRatePerIp, R2_FROM=N spreads the normal clients over N addresses (default 40)
 * The normal clients warm the host up first (2 s, not measured), and send on a 1 ms tick: with the load client's
 * default 5 ms tick, each process sent its messages as one batch, and the clean p99 measured that batch's queue and
 * how the two processes' ticks lined up (1.1-4.8 ms from run to run) more than the host (0.4-1.0 ms now).
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LoadGroup, type LoadResult } from './load-client.js';
import { tempDir } from './lib/plugins.js';
import { forkTs, nextMessage, ofType, stopChild } from './lib/processes.js';
import { benchArgs, finish } from './lib/report.js';
import { ms, ratio } from './lib/stats.js';
import type { HostileCounts } from './servers/hostile-clients.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const args = benchArgs();
const connections = args.quick ? 100 : 1000;
const durationMs = args.quick ? 3000 : 10_000;
const rate = args.quick ? 500 : 2000;
const WARMUP_MS = args.quick ? 1000 : 2000;
const MiB = 1024 * 1024;
// The limits R2 runs with: defaults except a short frame timeout, so stalled frames are closed within a run.
const LIMITS = { maxQueuedMessages: 1000, maxQueuedBytes: 16 * MiB, maxIncompleteBytes: 64 * MiB, frameTimeout: 2000 };
// docs/reliability.md, "Why the per-IP limits are off by default": what a directly exposed host should set.
// R2_SHARE=BYTES tries another maxIncompleteBytesPerIp.
const PER_IP = { maxConnectionsPerIp: 256, handshakeRatePerIp: Number(process.env.R2_RATE ?? 50), maxIncompleteBytesPerIp: Number(process.env.R2_SHARE ?? MiB) };
const NORMAL_FROM = Array.from({ length: Number(process.env.R2_FROM ?? 40) }, (_, i) => `127.0.0.${i + 2}`);
const ONLY = process.env.R2_ONLY;

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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

interface Run {
  load: LoadResult;
  peakRss: number;
  cpuPerReplyUs: number;
  dropped: number;
}

/** The hostile clients' process (bench/servers/hostile-clients.ts), started and attacking. */
async function startHostiles(wsUrl: string, tcpUrl: string): Promise<ChildProcess> {
  const child = forkTs(path.join(HERE, 'servers/hostile-clients.ts'), [JSON.stringify({ wsUrl, tcpUrl, ...(ONLY ? { only: ONLY } : {}) })], { fds: 4096 });
  await nextMessage(child, ofType('started'), 60_000, 'hostile clients');
  return child;
}

async function stopHostiles(child: ChildProcess): Promise<HostileCounts> {
  child.send({ type: 'stop' });
  const { counts } = await nextMessage(child, ofType<{ type: 'stopped'; counts: HostileCounts }>('stopped'), 30_000, 'hostile clients stop');
  await stopChild(child);
  return counts;
}

async function measure(child: ChildProcess, pid: number, load: LoadGroup, hostile: ChildProcess | undefined): Promise<Run & { counts?: HostileCounts }> {
  const s0 = await status(child);
  let peakRss = rssOf(pid);
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssOf(pid))), 100);
  const r = await load.run({ mode: 'rate', rate, durationMs, payload: 32, tickMs: 1 });
  clearInterval(sampler);
  const counts = hostile ? await stopHostiles(hostile) : undefined;
  const s1 = await status(child);
  // The host's CPU over the run, per normal reply (the hostile run's includes the work the hostile clients cost).
  return {
    load: r,
    peakRss,
    cpuPerReplyUs: ((s1.cpuMs - s0.cpuMs) * 1000) / Math.max(1, r.received),
    dropped: s1.messages.dropped - s0.messages.dropped,
    ...(counts ? { counts } : {}),
  };
}

interface Pair {
  clean: Run;
  hostile: Run;
  counts: HostileCounts;
  rss0: number;
}

/** One host with `limits`: a clean run, then a hostile one, against the same 1,000 normal clients. */
async function pair(plugin: string, limits: HostLimitsJson): Promise<Pair> {
  // R2_HOST_FLAGS='--cpu-prof --cpu-prof-dir=/tmp/prof' profiles the host (NODE_OPTIONS refuses --cpu-prof).
  const nodeFlags = process.env.R2_HOST_FLAGS?.split(' ').filter(Boolean) ?? [];
  const server = forkTs(path.join(HERE, 'servers/hotline-server.ts'), [JSON.stringify({ plugin, tcpLength: true, sessions: true, limits })], { nodeFlags, stdout: process.env.R2_HOST_STDOUT === '1' });
  try {
    const ready = await nextMessage(server, ofType<{ type: 'ready'; urls: string[]; pid: number }>('ready'), 60_000, 'hotline-server');
    const [wsUrl, tcpUrl] = ready.urls as [string, string];
    const rss0 = rssOf(ready.pid);
    const load = await LoadGroup.connect({ url: wsUrl, connections, processes: 2, localAddresses: NORMAL_FROM });
    try {
      // Warm up first (JIT, the garbage of 1,000 connects), so the clean run is not charged for what the hostile run
      // then gets for free.
      await load.run({ mode: 'rate', rate, durationMs: WARMUP_MS, payload: 32, tickMs: 1 });
      const clean = await measure(server, ready.pid, load, undefined);
      const h = await startHostiles(wsUrl, tcpUrl);
      let hostile: Awaited<ReturnType<typeof measure>>;
      try {
        // Let the hostile clients reach their steady state (the flood paused, the partial-frame budget full) first.
        await sleep(1000);
        hostile = await measure(server, ready.pid, load, h);
      } finally {
        await stopChild(h);
      }
      const perIp = Number.isFinite(limits.handshakeRatePerIp ?? Infinity) ? 'per-IP on' : 'per-IP off';
      console.log(`${perIp}: p99 clean ${ms(clean.load.latency.p99)}, hostile ${ms(hostile.load.latency.p99)}; lost ${hostile.load.lost}; peak RSS ${(hostile.peakRss / MiB).toFixed(0)} MiB`);
      return { clean, hostile, counts: hostile.counts!, rss0 };
    } finally {
      await load.close();
    }
  } finally {
    await stopChild(server);
  }
}

type HostLimitsJson = typeof LIMITS & { maxConnectionsPerIp?: number; handshakeRatePerIp?: number; maxIncompleteBytesPerIp?: number };

/** The rows of the run with per-IP limits off (a host behind a proxy): reported, no target. */
function proxiedRows(proxied: Pair) {
  return [
    {
      figure: "R2 per-IP limits off (a host behind a proxy): normal clients' p99",
      hotline: ms(proxied.hostile.load.latency.p99),
      baseline: `clean run: ${ms(proxied.clean.load.latency.p99)}`,
      ratio: ratio(proxied.hostile.load.latency.p99, proxied.clean.load.latency.p99),
      target: '',
    },
    {
      figure: 'R2 per-IP limits off: lost, host peak RSS, CPU per normal reply',
      hotline: `${proxied.hostile.load.lost} lost, ${(proxied.hostile.peakRss / MiB).toFixed(0)} MiB, ${proxied.hostile.cpuPerReplyUs.toFixed(0)} µs`,
      baseline: `clean run: ${proxied.clean.load.lost} lost, ${(proxied.clean.peakRss / MiB).toFixed(0)} MiB, ${proxied.clean.cpuPerReplyUs.toFixed(0)} µs`,
      ratio: ratio(proxied.hostile.cpuPerReplyUs, proxied.clean.cpuPerReplyUs),
      target: '',
    },
  ];
}

const dir = tempDir('r2');
try {
  const plugin = dir.write('plugin.ts', PLUGIN);
  const exposed = await pair(plugin, { ...LIMITS, ...PER_IP });
  // The per-IP-off pair has no target: --quick (CI, which only keeps the bench from rotting) leaves it out.
  const proxied = ONLY || args.quick ? undefined : await pair(plugin, LIMITS);
  const rssBound = (p: Pair): number => p.rss0 + LIMITS.maxIncompleteBytes + LIMITS.maxQueuedBytes + 64 * MiB;
  const p99Ratio = exposed.hostile.load.latency.p99 / exposed.clean.load.latency.p99;
  const { clean, hostile, counts } = exposed;
  finish(args, {
    id: 'R2',
    title: 'hostile clients',
    quick: args.quick,
    rows: [
      {
        figure: `R2 normal clients' p99 reply latency, ${connections} conns at ${rate} msg/s, with the 4 hostile clients (per-IP limits on)`,
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
        target: `≤ start + maxIncompleteBytes + maxQueuedBytes + 64 MiB (${(rssBound(exposed) / MiB).toFixed(0)} MiB)`,
        met: hostile.peakRss <= rssBound(exposed),
      },
      {
        figure: 'R2 host CPU per normal reply',
        hotline: `${hostile.cpuPerReplyUs.toFixed(0)} µs`,
        baseline: `clean run: ${clean.cpuPerReplyUs.toFixed(0)} µs`,
        ratio: ratio(hostile.cpuPerReplyUs, clean.cpuPerReplyUs),
        target: '',
      },
      ...(proxied ? proxiedRows(proxied) : []),
    ],
    zeroLoss: [
      { name: "R2 normal clients' replies lost with hostile clients", count: hostile.load.lost },
      ...(proxied ? [{ name: "R2 normal clients' replies lost with hostile clients, per-IP limits off", count: proxied.hostile.load.lost }] : []),
    ],
    notes: [
      `hostile clients during the per-IP run: ${counts.flooded} flood frames written, ${counts.truncated} truncated TCP frames, ${counts.fragmented} unfinished fragmented messages, ${counts.helloDrops} hello-then-drop handshakes attempted; host dropped ${hostile.dropped} flood messages. ${proxied ? `Per-IP off: ${proxied.counts.helloDrops} hello-then-drop handshakes, ${proxied.counts.fragmented} fragmented messages.` : 'The per-IP-off run is left out with --quick.'}`,
      `limits: maxQueuedMessages ${LIMITS.maxQueuedMessages}, maxQueuedBytes 16 MiB, maxIncompleteBytes 64 MiB, frameTimeout ${LIMITS.frameTimeout} ms (default 30 000, shortened so stalled frames turn over within a run); per-IP run: maxConnectionsPerIp ${PER_IP.maxConnectionsPerIp}, handshakeRatePerIp ${PER_IP.handshakeRatePerIp}/s, maxIncompleteBytesPerIp ${(PER_IP.maxIncompleteBytesPerIp / MiB).toFixed(2)} MiB; ${durationMs / 1000} s per run; host RSS at start ${(exposed.rss0 / MiB).toFixed(0)} MiB.`,
      'each hostile kind from its own loopback address, normal clients from 40 others; host, 2 load processes and the hostile clients share the same 2 cores, the hostile clients in their own process at nice 10 (an attacker pays for its own CPU; bench/servers/hostile-clients.ts).',
    ],
  });
} finally {
  dir.remove();
}
