/**
 * P3 continuity at scale: many WebSocket connections with steady numbered traffic, and a run of swaps in the middle
 * of it. Counts closed / lost / duplicated / reordered (all must be 0), and compares reply latency and the worst
 * stall with the same load and no swaps, on the same open connections.
 *
 *   node --import tsx bench/p3-continuity.bench.ts [--quick]
 *
 * 10,000 connections need about 10,300 open files in the server process and 2,800 in each of 4 client processes. The bench
 * raises the soft limit through `ulimit -n` when the hard limit allows; otherwise run `ulimit -n 65536` (as root, or
 * raise the hard limit in /etc/security/limits.conf or the container's --ulimit nofile) first.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SwapRecord } from '../src/index.js';
import { LoadGroup, type LoadResult, formatLoadResult } from './load-client.js';
import { echoPlugin, tempDir } from './lib/plugins.js';
import { fdLimit, forkTs, nextMessage, ofType, stopChild } from './lib/processes.js';
import { benchArgs, finish } from './lib/report.js';
import { ms } from './lib/stats.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const args = benchArgs();
let connections = args.quick ? 1000 : 10_000;
const swaps = args.quick ? 10 : 100;
const durationMs = args.quick ? 5000 : 30_000;
// Messages per second in total (quick: each connection once a second; full: each once every 2 s).
const rate = args.quick ? 1000 : 5000;
const processes = args.quick ? 2 : 4;

const notes: string[] = [];
const { hard } = fdLimit();
if (hard < connections + 512) {
  const fit = Math.max(100, hard - 512);
  notes.push(`the hard fd limit is ${hard}: ran ${fit} connections instead of ${connections}. Raise it (ulimit -Hn 65536 as root) for the full figure.`);
  connections = fit;
}

const dir = tempDir('p3');
const plugin = dir.write('plugin.ts', echoPlugin('v0'));
const server = forkTs(path.join(HERE, 'servers/hotline-server.ts'), [JSON.stringify({ plugin, maxConnections: connections + 1000 })], {
  fds: connections + 512,
});
let load: LoadGroup | undefined;
try {
  const { url } = await nextMessage(server, ofType<{ type: 'ready'; url: string }>('ready'), 60_000, 'hotline server');
  const t0 = performance.now();
  load = await LoadGroup.connect({
    url,
    connections,
    processes,
    // Distinct loopback sources, so 10,000 sockets never exhaust one address's ephemeral ports.
    localAddresses: Array.from({ length: processes }, (_, i) => `127.0.0.${i + 2}`),
  });
  console.log(`${connections} connections open in ${Math.round(performance.now() - t0)} ms`);

  const quiet = await load.run({ mode: 'rate', rate, durationMs });
  console.log(`without swaps:\n${formatLoadResult(quiet)}`);

  const records: SwapRecord[] = [];
  const errors: string[] = [];
  const during = load.run({ mode: 'rate', rate, durationMs });
  // Swaps spread over the middle of the run, start to start, so the load is steady before the first and after the last.
  const spacing = (durationMs * 0.8) / swaps;
  await sleep(durationMs * 0.1);
  const start = performance.now();
  for (let i = 1; i <= swaps; i++) {
    const wait = start + (i - 1) * spacing - performance.now();
    if (wait > 0) await sleep(wait);
    dir.write('plugin.ts', echoPlugin(`v${i}`));
    const reloaded = nextMessage(server, ofType<{ type: 'reloaded'; record?: SwapRecord; error?: string }>('reloaded'), 30_000, 'reload');
    server.send({ type: 'reload' });
    const r = await reloaded;
    if (r.record?.outcome === 'switched') records.push(r.record);
    else errors.push(r.error ?? r.record?.error?.message ?? 'aborted');
  }
  const withSwaps: LoadResult = await during;
  console.log(`with ${records.length} swaps:\n${formatLoadResult(withSwaps)}`);

  // The time dispatch was held: suspend (old handlers settle), migrate, switch. Messages queue meanwhile.
  const pause = (r: SwapRecord) => (r.durations.suspending ?? 0) + (r.durations.migrating ?? 0) + (r.durations.switching ?? 0);
  const pauses = records.map(pause).sort((a, b) => a - b);
  const maxPause = pauses.at(-1) ?? 0;
  const medPause = pauses[Math.floor(pauses.length / 2)] ?? 0;
  const medTotal = records.map((r) => r.totalMs).sort((a, b) => a - b)[Math.floor(records.length / 2)] ?? 0;
  const lossRow = (r: LoadResult) => `closed ${r.closed}, lost ${r.lost}, dup ${r.duplicated}, reordered ${r.reordered}`;
  const latRow = (r: LoadResult) => `p50 ${ms(r.latency.p50)}, p99 ${ms(r.latency.p99)}, max ${ms(r.latency.max)}`;
  const stallMet = withSwaps.worstStallMs <= 10;
  finish(args, {
    id: 'P3',
    title: 'continuity at scale',
    quick: args.quick,
    rows: [
      {
        figure: `P3 ${connections.toLocaleString('en-US')} WS conns, ${rate.toLocaleString('en-US')} msg/s, ${records.length} swaps in ${durationMs / 1000} s`,
        hotline: lossRow(withSwaps),
        baseline: `no swaps: ${lossRow(quiet)}`,
        ratio: '',
        target: 'all 0',
        met: withSwaps.closed + withSwaps.lost + withSwaps.duplicated + withSwaps.reordered === 0 && errors.length === 0,
      },
      {
        figure: 'P3 reply latency',
        hotline: latRow(withSwaps),
        baseline: `no swaps: ${latRow(quiet)}`,
        ratio: `p99 ${(withSwaps.latency.p99 / quiet.latency.p99).toFixed(2)}×`,
        target: '',
      },
      {
        figure: 'P3 worst stall (no reply while messages in flight)',
        hotline: ms(withSwaps.worstStallMs),
        baseline: `no swaps: ${ms(quiet.worstStallMs)}`,
        ratio: `${(withSwaps.worstStallMs / quiet.worstStallMs).toFixed(2)}×`,
        target: '≤ 10 ms',
        met: stallMet,
      },
      {
        figure: 'P3 dispatch pause per swap (suspend+migrate+switch)',
        hotline: `median ${ms(medPause)}, max ${ms(maxPause)}`,
        baseline: '',
        ratio: '',
        target: '',
      },
    ],
    zeroLoss: [
      { name: 'P3 closed', count: withSwaps.closed + quiet.closed },
      { name: 'P3 lost', count: withSwaps.lost + quiet.lost },
      { name: 'P3 duplicated', count: withSwaps.duplicated + quiet.duplicated },
      { name: 'P3 reordered', count: withSwaps.reordered + quiet.reordered },
      { name: 'P3 failed swaps', count: errors.length },
    ],
    notes: [
      `${processes} client processes on 127.0.0.2..${processes + 1}, ${durationMs / 1000} s per phase, same open connections for both phases; swap total median ${ms(medTotal)} (build+load+prepare+pause+drain).`,
      'the worst stall is measured at the clients, so it includes client and server scheduling on shared cores: the no-swaps column is that floor, and the dispatch pause row is what a swap itself holds messages back.',
      ...(errors.length ? [`swap errors: ${[...new Set(errors)].join('; ')}`] : []),
      ...notes,
    ],
  });
} finally {
  await load?.close();
  await stopChild(server, 10_000);
  dir.remove();
}
