/**
 * P1 swap latency: a file save → the first reply produced by the new code, for a 10-file TypeScript app.
 * hotline (file watcher, default options) swaps in place; the baselines restart a plain `ws` server of the same 10
 * files under `node --watch` (ES modules) and `tsx watch` (TypeScript), and the client reconnects. For hotline the
 * time is also split into its parts (watcher, build, load+check, dispatch pause, the rest) from the swap records.
 *
 *   node --import tsx bench/p1-swap-latency.bench.ts [--quick]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { SwapRecord } from '../src/index.js';
import { type App10, tempDir, writeApp10 } from './lib/plugins.js';
import { Prober } from './lib/prober.js';
import { forkTs, freePort, nextMessage, ofType, stopChild } from './lib/processes.js';
import { benchArgs, finish } from './lib/report.js';
import { median, ms, quantile } from './lib/stats.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const TSX_CLI = createRequire(import.meta.url).resolve('tsx/cli');
const args = benchArgs();
const edits = args.quick ? 8 : 40;
const baselineEdits = args.quick ? 3 : 30;
// Quiet time between edits, so one save's watcher work never overlaps the next save.
const SETTLE_MS = 150;

interface Series {
  samples: number[];
  closes: number;
}

/** Save `edits` new tags one after another and time each save → first reply carrying the new tag. */
async function timeEdits(app: App10, prober: Prober, n: number, onSave?: (i: number, wallAt: number) => void): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 1; i <= n; i++) {
    await sleep(SETTLE_MS);
    const tag = `v${i}`;
    const replied = prober.waitFor(tag);
    onSave?.(i, performance.timeOrigin + performance.now());
    const t0 = performance.now();
    app.setTag(tag);
    samples.push((await replied) - t0);
  }
  return samples;
}

interface Breakdown {
  watcher: number[];
  build: number[];
  loadCheck: number[];
  pause: number[];
  rest: number[];
}

async function hotline(watch: { debounce?: number; stability?: number }): Promise<Series & { breakdown: Breakdown }> {
  const dir = tempDir('p1-hotline');
  const app = writeApp10(dir, 'hotline');
  const server = forkTs(path.join(HERE, 'servers/hotline-server.ts'), [JSON.stringify({ plugin: app.entry, watch })]);
  const builds: number[] = [];
  const records: SwapRecord[] = [];
  server.on('message', (m: { type: string; phase?: string; trigger?: string; at: number; record?: SwapRecord }) => {
    if (m.type === 'phase' && m.phase === 'building' && m.trigger === 'watch') builds.push(m.at);
    if (m.type === 'swap' && m.record?.trigger === 'watch') records.push(m.record);
  });
  let prober: Prober | undefined;
  try {
    const { url } = await nextMessage(server, ofType<{ type: 'ready'; url: string }>('ready'), 60_000, 'hotline server');
    prober = new Prober(url);
    await prober.waitFor('v0');
    const saves: number[] = [];
    const samples = await timeEdits(app, prober, edits, (_i, at) => saves.push(at));
    await sleep(50);
    const b: Breakdown = { watcher: [], build: [], loadCheck: [], pause: [], rest: [] };
    if (builds.length === edits && records.length === edits) {
      for (let i = 0; i < edits; i++) {
        const d = records[i]!.durations;
        const watcher = builds[i]! - saves[i]!;
        const build = d.building ?? 0;
        const loadCheck = (d.loading ?? 0) + (d.preparing ?? 0);
        const pause = (d.suspending ?? 0) + (d.migrating ?? 0) + (d.switching ?? 0);
        b.watcher.push(watcher);
        b.build.push(build);
        b.loadCheck.push(loadCheck);
        b.pause.push(pause);
        b.rest.push(samples[i]! - watcher - build - loadCheck - pause);
      }
    }
    return { samples, closes: prober.closes, breakdown: b };
  } finally {
    prober?.close();
    await stopChild(server);
    dir.remove();
  }
}

/** Kill a watcher and the server it restarts: they share a process group we created. */
async function stopGroup(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    process.kill(-child.pid!, 'SIGTERM');
  } catch {
    return;
  }
  const timer = setTimeout(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }, 3000);
  await exited;
  clearTimeout(timer);
}

async function restartBaseline(kind: 'node' | 'tsx'): Promise<Series> {
  const dir = tempDir(`p1-${kind}`);
  const app = writeApp10(dir, kind);
  const port = await freePort();
  const argv = kind === 'node' ? ['--watch', app.entry] : [TSX_CLI, 'watch', '--clear-screen=false', app.entry];
  const child = spawn(process.execPath, argv, { cwd: dir.dir, env: { ...process.env, PORT: String(port) }, stdio: 'ignore', detached: true });
  const prober = new Prober(`ws://127.0.0.1:${port}`);
  try {
    await prober.waitFor('v0', 30_000);
    const samples = await timeEdits(app, prober, baselineEdits);
    return { samples, closes: prober.closes };
  } finally {
    prober.close();
    await stopGroup(child);
    dir.remove();
  }
}

// The watcher defaults (debounce 2, stability 10), then the earlier, more cautious setting, to show what the
// stability wait costs.
const CAUTIOUS = { debounce: 10, stability: 20 };
const hot = await hotline({});
const cautious = await hotline(CAUTIOUS);
const nodeWatch = await restartBaseline('node');
const tsxWatch = await restartBaseline('tsx');

const med = median(hot.samples);
const p90 = quantile(hot.samples, 0.9);
const nodeMed = median(nodeWatch.samples);
const tsxMed = median(tsxWatch.samples);
const parts = (b: Breakdown) => b.watcher.length
  ? `watcher (fs event + stability wait + debounce) ${ms(median(b.watcher))}, build ${ms(median(b.build))}, load+check ${ms(median(b.loadCheck))}, dispatch pause ${ms(median(b.pause))}, rest (drain, reply, probe interval) ${ms(median(b.rest))}`
  : 'breakdown unavailable (a save produced no swap or two)';
finish(args, {
  id: 'P1',
  title: 'swap latency',
  quick: args.quick,
  rows: [
    {
      figure: `P1 save → first reply from new code, 10-file TS app (median of ${edits})`,
      hotline: ms(med),
      baseline: `node --watch: ${ms(nodeMed)}; tsx watch: ${ms(tsxMed)}`,
      ratio: `${(nodeMed / med).toFixed(1)}× / ${(tsxMed / med).toFixed(1)}× faster`,
      target: '≤ 30 ms; ≥ 20× faster',
      met: med <= 30 && nodeMed / med >= 20,
    },
    {
      figure: 'P1 save → first reply, p90',
      hotline: ms(p90),
      baseline: `node --watch: ${ms(quantile(nodeWatch.samples, 0.9))}; tsx watch: ${ms(quantile(tsxWatch.samples, 0.9))}`,
      ratio: `${(quantile(nodeWatch.samples, 0.9) / p90).toFixed(1)}× / ${(quantile(tsxWatch.samples, 0.9) / p90).toFixed(1)}× faster`,
      target: '',
    },
    {
      figure: `P1 same, cautious watcher (stability ${CAUTIOUS.stability}, debounce ${CAUTIOUS.debounce}), median / p90`,
      hotline: `${ms(median(cautious.samples))} / ${ms(quantile(cautious.samples, 0.9))}`,
      baseline: `node --watch: ${ms(nodeMed)}; tsx watch: ${ms(tsxMed)}`,
      ratio: `${(nodeMed / median(cautious.samples)).toFixed(1)}× / ${(tsxMed / median(cautious.samples)).toFixed(1)}× faster`,
      target: '',
    },
    {
      figure: 'P1 client connections closed by the edits',
      hotline: String(hot.closes + cautious.closes),
      baseline: `node --watch: ${nodeWatch.closes}; tsx watch: ${tsxWatch.closes}`,
      ratio: '',
      target: '',
    },
  ],
  zeroLoss: [],
  notes: [
    `hotline median parts, defaults: ${parts(hot.breakdown)}.`,
    `hotline median parts, cautious watcher: ${parts(cautious.breakdown)}.`,
    `rows 1-2 use the watcher defaults; baselines: ${baselineEdits} edits each, the client reconnects 2 ms after a close. Probes every 1 ms, so each figure includes up to ~1 ms of probe spacing.`,
  ],
});
