/**
 * M1 metrics cost (issue 14): server CPU per echoed message with Prometheus metrics on (the handler histogram on
 * the message path, a render of /metrics every second, 15 times Prometheus' default rate) against off, two server
 * processes under the same ping-pong load. Each round is a pair (off then on, then on then off, so a drift of the
 * machine's load cancels out); the figure is the median of the pairs' on/off ratios, which a shared machine whose
 * speed wanders between pairs disturbs far less than a ratio of medians. CPU is the server's process.cpuUsage()
 * over the round, divided by the messages it handled.
 *
 *   node --import tsx bench/m1-metrics.bench.ts [--quick]
 */
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LoadGroup } from './load-client.js';
import { echoPlugin, tempDir } from './lib/plugins.js';
import { forkTs, nextMessage, ofType, stopChild } from './lib/processes.js';
import { benchArgs, finish } from './lib/report.js';
import { median } from './lib/stats.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const args = benchArgs();
const connections = 50;
const rounds = args.quick ? 3 : 7;
const durationMs = args.quick ? 1000 : 3000;

interface Server {
  child: ChildProcess;
  url: string;
  /** The clients of this server, connected once and kept for every round. */
  load?: LoadGroup;
}

interface Status {
  type: 'status';
  messages: { in: number };
  cpuMs: number;
}

async function startServer(config: object): Promise<Server> {
  const child = forkTs(path.join(HERE, 'servers/hotline-server.ts'), [JSON.stringify(config)]);
  const ready = await nextMessage(child, ofType<{ type: 'ready'; url: string }>('ready'), 60_000, 'hotline-server');
  return { child, url: ready.url };
}

async function status(s: Server): Promise<Status> {
  const reply = nextMessage(s.child, ofType<Status>('status'), 10_000, 'status');
  s.child.send({ type: 'status' });
  return reply;
}

/** Server CPU µs per message over one round of load, and the lost count. */
async function round(s: Server, ms = durationMs): Promise<{ usPerMsg: number; lost: number; throughput: number }> {
  s.load ??= await LoadGroup.connect({ url: s.url, connections, processes: 2 });
  const before = await status(s);
  const r = await s.load.run({ mode: 'pingpong', window: 4, durationMs: ms, payload: 32 });
  const after = await status(s);
  const handled = after.messages.in - before.messages.in;
  return { usPerMsg: ((after.cpuMs - before.cpuMs) * 1000) / Math.max(handled, 1), lost: r.lost, throughput: r.throughput };
}

const dir = tempDir('m1');
const servers: ChildProcess[] = [];
const both: Server[] = [];
try {
  const plugin = dir.write('plugin.ts', echoPlugin());
  const off = await startServer({ plugin });
  servers.push(off.child);
  const on = await startServer({ plugin, metrics: true, scrapeEvery: 1000 });
  servers.push(on.child);
  both.push(off, on);
  // One short warm-up round each: the JIT and the connection setup are not what is measured.
  await round(off, 500);
  await round(on, 500);
  const offRuns: number[] = [];
  const onRuns: number[] = [];
  const ratios: number[] = [];
  let lost = 0;
  for (let i = 0; i < rounds; i++) {
    let a;
    let b;
    if (i % 2 === 0) {
      a = await round(off);
      b = await round(on);
    } else {
      b = await round(on);
      a = await round(off);
    }
    ratios.push(b.usPerMsg / a.usPerMsg);
    offRuns.push(a.usPerMsg);
    onRuns.push(b.usPerMsg);
    lost += a.lost + b.lost;
    console.log(`round ${i + 1}: off ${a.usPerMsg.toFixed(2)} µs/msg (${Math.round(a.throughput)} msg/s), on ${b.usPerMsg.toFixed(2)} µs/msg (${Math.round(b.throughput)} msg/s)`);
  }
  const offUs = median(offRuns);
  const onUs = median(onRuns);
  const r = median(ratios);
  finish(args, {
    id: 'M1',
    title: 'metrics cost',
    quick: args.quick,
    rows: [
      {
        figure: `M1 server CPU per message, metrics on (median of ${rounds} paired rounds)`,
        hotline: `${onUs.toFixed(2)} µs/msg`,
        baseline: `metrics off: ${offUs.toFixed(2)} µs/msg`,
        ratio: `${r.toFixed(3)}×`,
        target: '≤ 1.03× of off',
        met: r <= 1.03,
      },
    ],
    zeroLoss: [{ name: 'M1 messages lost', count: lost }],
    notes: [
      `${connections} connections from 2 client processes, 4 messages in flight each, 32-byte echo, ${durationMs / 1000} s per round; ratio: median of the per-pair on/off ratios (${ratios.map((x) => x.toFixed(3)).join(', ')}); servers and clients share the same 2 cores.`,
      'metrics on: the per-version handler histogram on every message, counters read at scrape time, /metrics rendered every second.',
    ],
  });
} finally {
  await Promise.all(both.map((s) => s.load?.close()));
  await Promise.all(servers.map((c) => stopChild(c)));
  dir.remove();
}
