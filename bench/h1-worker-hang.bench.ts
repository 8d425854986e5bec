/**
 * H1 (issue 11): a hang in worker mode under load. 1,000 clients (100 with --quick) send at a steady rate while one
 * more client sends the message that makes the version spin (`for (;;) {}`, once). Measured: the time from that send
 * to the restore starting (detection) and the restore's own duration (from the swap history), the longest stall any
 * load client saw, and the messages lost (target 0: every message that arrived meanwhile is delivered to the
 * restored version). The baseline is the same load before the hang, in the same run.
 *
 *   node --import tsx bench/h1-worker-hang.bench.ts [--quick]
 */
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { LoadGroup, type LoadResult } from './load-client.js';
import { tempDir } from './lib/plugins.js';
import { forkTs, nextMessage, ofType, stopChild } from './lib/processes.js';
import { benchArgs, finish } from './lib/report.js';
import type { SwapRecord } from '../src/index.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const args = benchArgs();
const connections = args.quick ? 100 : 1_000;
const rate = args.quick ? 500 : 2_000;
const durationMs = args.quick ? 4_000 : 8_000;
const hangTimeout = 1_000;

const plugin = (markers: string) => `
import { definePlugin } from 'hotline';
import { existsSync, writeFileSync } from 'node:fs';
export default definePlugin<{ total: number }>({
  name: 'h1', version: '1.0.0', api: 1,
  init: () => ({ total: 0 }),
  migrate: (prev) => prev.state as { total: number },
  onMessage(conn, data, ctx) {
    if (data === 'spin' && !existsSync(${JSON.stringify(markers)} + '/spun')) {
      writeFileSync(${JSON.stringify(markers)} + '/spun', '');
      for (;;) {}
    }
    ctx.state.total++;
    conn.send(data);
  },
});
`;

const dir = tempDir('h1');
let server: ChildProcess | undefined;
try {
  const entry = dir.write('plugin.ts', plugin(dir.dir));
  server = forkTs(path.join(HERE, 'servers/hotline-server.ts'), [JSON.stringify({ plugin: entry, isolation: 'worker', hangTimeout })]);
  const { url } = await nextMessage(server, ofType<{ type: 'ready'; url: string }>('ready'), 60_000, 'hotline');
  const load = await LoadGroup.connect({ url, connections, processes: 2 });
  let calm: LoadResult;
  let hung: LoadResult;
  let sentAt = 0;
  try {
    calm = await load.run({ mode: 'rate', rate, durationMs: durationMs / 2, payload: 32 });
    const trigger = new WebSocket(url);
    await new Promise((r) => trigger.once('open', r));
    const run = load.run({ mode: 'rate', rate, durationMs, payload: 32 });
    await new Promise((r) => setTimeout(r, durationMs / 4));
    sentAt = Date.now();
    trigger.send('spin');
    hung = await run;
    trigger.close();
  } finally {
    await load.close();
  }
  server.send({ type: 'status' });
  const status = await nextMessage(server, ofType<{ type: 'status'; swaps: SwapRecord[] }>('status'), 10_000, 'hotline');
  const restore = status.swaps.find((s) => s.trigger === 'restore');
  const detectMs = restore ? Date.parse(restore.startedAt) - sentAt : NaN;
  const restoreMs = restore?.totalMs ?? NaN;
  const lost = hung.lost + calm.lost;
  finish(args, {
    id: 'H1',
    title: 'hang in worker mode',
    quick: args.quick,
    rows: [
      {
        figure: `H1 hang to restore start (detection), hangTimeout ${hangTimeout} ms, ${connections} clients`,
        hotline: `${Math.round(detectMs)} ms`,
        baseline: `hangTimeout: ${hangTimeout} ms`,
        ratio: `${(detectMs / hangTimeout).toFixed(2)}× hangTimeout`,
        target: '≤ 1.25× hangTimeout + a turn',
        met: detectMs <= hangTimeout * 1.25 + 100,
      },
      {
        figure: 'H1 restore (new worker, init, migrate from the checkpoint, hand-over)',
        hotline: `${Math.round(restoreMs)} ms`,
        baseline: '',
        ratio: '',
        target: '',
      },
      {
        figure: 'H1 longest stall seen by the other clients',
        hotline: `${Math.round(hung.worstStallMs)} ms`,
        baseline: `same load, no hang: ${Math.round(calm.worstStallMs)} ms`,
        ratio: `${(hung.worstStallMs / hangTimeout).toFixed(2)}× hangTimeout`,
        target: 'hangTimeout + restore',
        met: hung.worstStallMs <= detectMs + restoreMs + 1_000,
      },
      {
        figure: 'H1 messages lost / closed connections',
        hotline: `${hung.lost} lost, ${hung.closed} closed, ${hung.reordered} reordered, ${hung.duplicated} duplicated`,
        baseline: `no hang: ${calm.lost} lost`,
        ratio: '',
        target: '0',
        met: lost === 0 && hung.closed === 0,
      },
    ],
    zeroLoss: [
      { name: 'H1 messages lost across a worker hang', count: lost },
      { name: 'H1 connections closed by a worker hang', count: hung.closed },
    ],
    notes: [
      `${connections} connections from 2 client processes at ${rate} msg/s in total; one more client sends the spinning message ${durationMs / 4} ms into an ${durationMs / 1000} s run.`,
      `restore outcome: ${restore?.outcome ?? 'none'} (${restore?.error?.code ?? 'no error'}), ${status.swaps.length} swap records.`,
    ],
  });
} finally {
  if (server) await stopChild(server);
  dir.remove();
}
