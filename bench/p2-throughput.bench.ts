/**
 * P2 throughput: echo messages/s through hotline vs a raw `ws` echo server, the same ping-pong load from separate
 * client processes. Rounds alternate raw and hotline so machine noise hits both alike; the median round counts.
 *
 *   node --import tsx bench/p2-throughput.bench.ts [--quick]
 */
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LoadGroup, type LoadResult } from './load-client.js';
import { echoPlugin, rawEchoServer, tempDir } from './lib/plugins.js';
import { forkTs, nextMessage, ofType, stopChild } from './lib/processes.js';
import { benchArgs, finish } from './lib/report.js';
import { median } from './lib/stats.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const args = benchArgs();
const connections = args.quick ? 50 : 100;
const rounds = args.quick ? 1 : 3;
const durationMs = args.quick ? 2000 : 5000;

async function startServer(file: string, argv: string[]): Promise<{ child: ChildProcess; url: string }> {
  const child = forkTs(file, argv);
  const ready = await nextMessage(child, ofType<{ type: 'ready'; url: string }>('ready'), 60_000, path.basename(file));
  return { child, url: ready.url };
}

async function round(url: string): Promise<LoadResult> {
  const load = await LoadGroup.connect({ url, connections, processes: 2 });
  try {
    return await load.run({ mode: 'pingpong', window: 1, durationMs, payload: 32 });
  } finally {
    await load.close();
  }
}

const dir = tempDir('p2');
const servers: ChildProcess[] = [];
try {
  const rawFile = dir.write('raw-echo.mjs', rawEchoServer());
  const plugin = dir.write('plugin.ts', echoPlugin());
  const raw = await startServer(rawFile, []);
  servers.push(raw.child);
  const hot = await startServer(path.join(HERE, 'servers/hotline-server.ts'), [JSON.stringify({ plugin })]);
  servers.push(hot.child);

  const rawRuns: LoadResult[] = [];
  const hotRuns: LoadResult[] = [];
  for (let i = 0; i < rounds; i++) {
    rawRuns.push(await round(raw.url));
    hotRuns.push(await round(hot.url));
    console.log(`round ${i + 1}: raw ${Math.round(rawRuns[i]!.throughput)} msg/s, hotline ${Math.round(hotRuns[i]!.throughput)} msg/s`);
  }
  const rawTput = median(rawRuns.map((r) => r.throughput));
  const hotTput = median(hotRuns.map((r) => r.throughput));
  const r = hotTput / rawTput;
  const lat = (runs: LoadResult[]) => median(runs.map((x) => x.latency.p50));
  finish(args, {
    id: 'P2',
    title: 'throughput',
    quick: args.quick,
    rows: [
      {
        figure: `P2 echo throughput, ${connections} conns ping-pong (median of ${rounds})`,
        hotline: `${Math.round(hotTput).toLocaleString('en-US')} msg/s`,
        baseline: `raw ws: ${Math.round(rawTput).toLocaleString('en-US')} msg/s`,
        ratio: `${r.toFixed(2)}×`,
        target: '≥ 0.95× of raw',
        met: r >= 0.95,
      },
      {
        figure: 'P2 reply latency p50 under that load',
        hotline: `${lat(hotRuns).toFixed(2)} ms`,
        baseline: `raw ws: ${lat(rawRuns).toFixed(2)} ms`,
        ratio: `${(lat(hotRuns) / lat(rawRuns)).toFixed(2)}×`,
        target: '',
      },
    ],
    zeroLoss: [],
    notes: [
      `${connections} connections from 2 client processes, 1 message in flight each, 32-byte text messages, ${durationMs / 1000} s per round; servers and clients share the same 2 cores.`,
      `lost in hotline rounds: ${hotRuns.reduce((a, x) => a + x.lost, 0)}, raw rounds: ${rawRuns.reduce((a, x) => a + x.lost, 0)}.`,
    ],
  });
} finally {
  await Promise.all(servers.map((c) => stopChild(c)));
  dir.remove();
}
