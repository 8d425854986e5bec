/**
 * P2w (issue 11): echo throughput and server CPU per message with the plugin in a worker thread (`isolation:
 * 'worker'`), against the same plugin inline and a raw `ws` echo server, all three in the same run. Rounds rotate
 * raw, inline, worker so machine noise hits them alike; the median round counts. CPU is the server process's
 * `process.cpuUsage()` (every thread, the version's worker included) per reply.
 *
 *   node --import tsx bench/p2w-worker.bench.ts [--quick]
 */
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LoadGroup, type LoadResult } from './load-client.js';
import { echoPlugin, tempDir, WS_URL } from './lib/plugins.js';
import { forkTs, nextMessage, ofType, stopChild } from './lib/processes.js';
import { benchArgs, finish } from './lib/report.js';
import { median } from './lib/stats.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const args = benchArgs();
const connections = args.quick ? 50 : 100;
const rounds = args.quick ? 1 : 3;
const durationMs = args.quick ? 2000 : 5000;

/** The raw ws echo server of P2, answering `status` with its CPU like bench/servers/hotline-server.ts. */
const RAW = `
import WS from '${WS_URL}';
const wss = new WS.WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
wss.on('listening', () => process.send({ type: 'ready', url: 'ws://127.0.0.1:' + wss.address().port }));
wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
process.on('message', (m) => {
  if (m.type !== 'status') return;
  const cpu = process.cpuUsage();
  process.send({ type: 'status', cpuMs: (cpu.user + cpu.system) / 1000 });
});
process.on('disconnect', () => process.exit(0));
`;

interface Server {
  name: string;
  child: ChildProcess;
  url: string;
}

interface Round {
  load: LoadResult;
  /** Server CPU per reply, in µs. */
  cpuUs: number;
}

async function startServer(name: string, file: string, argv: string[]): Promise<Server> {
  const child = forkTs(file, argv);
  const ready = await nextMessage(child, ofType<{ type: 'ready'; url: string }>('ready'), 60_000, name);
  return { name, child, url: ready.url };
}

async function cpuMs(s: Server): Promise<number> {
  s.child.send({ type: 'status' });
  return (await nextMessage(s.child, ofType<{ type: 'status'; cpuMs: number }>('status'), 10_000, s.name)).cpuMs;
}

async function round(s: Server): Promise<Round> {
  const load = await LoadGroup.connect({ url: s.url, connections, processes: 2 });
  try {
    const c0 = await cpuMs(s);
    const r = await load.run({ mode: 'pingpong', window: 1, durationMs, payload: 32 });
    const c1 = await cpuMs(s);
    return { load: r, cpuUs: ((c1 - c0) * 1000) / Math.max(1, r.received) };
  } finally {
    await load.close();
  }
}

const dir = tempDir('p2w');
const servers: Server[] = [];
try {
  const plugin = dir.write('plugin.ts', echoPlugin());
  const hotline = path.join(HERE, 'servers/hotline-server.ts');
  servers.push(await startServer('raw', dir.write('raw-echo.mjs', RAW), []));
  servers.push(await startServer('inline', hotline, [JSON.stringify({ plugin, isolation: 'inline' })]));
  servers.push(await startServer('worker', hotline, [JSON.stringify({ plugin, isolation: 'worker' })]));
  const runs = new Map<string, Round[]>(servers.map((s) => [s.name, []]));
  for (let i = 0; i < rounds; i++) {
    for (const s of servers) runs.get(s.name)!.push(await round(s));
    console.log(`round ${i + 1}: ${servers.map((s) => `${s.name} ${Math.round(runs.get(s.name)![i]!.load.throughput)} msg/s, ${runs.get(s.name)![i]!.cpuUs.toFixed(1)} µs CPU/msg`).join('; ')}`);
  }
  const tput = (n: string) => median(runs.get(n)!.map((r) => r.load.throughput));
  const cpu = (n: string) => median(runs.get(n)!.map((r) => r.cpuUs));
  const lost = (n: string) => runs.get(n)!.reduce((a, r) => a + r.load.lost, 0);
  const fmt = (x: number) => `${Math.round(x).toLocaleString('en-US')} msg/s`;
  const ratio = tput('worker') / tput('inline');
  finish(args, {
    id: 'P2w',
    title: 'worker isolation throughput',
    quick: args.quick,
    rows: [
      {
        figure: `P2w echo throughput, worker mode, ${connections} conns ping-pong (median of ${rounds})`,
        hotline: fmt(tput('worker')),
        baseline: `inline: ${fmt(tput('inline'))}; raw ws: ${fmt(tput('raw'))}`,
        ratio: `${ratio.toFixed(2)}× inline, ${(tput('worker') / tput('raw')).toFixed(2)}× raw`,
        target: '≥ 0.7× inline',
        met: ratio >= 0.7,
      },
      {
        figure: 'P2w server CPU per message (all threads)',
        hotline: `worker: ${cpu('worker').toFixed(1)} µs`,
        baseline: `inline: ${cpu('inline').toFixed(1)} µs; raw ws: ${cpu('raw').toFixed(1)} µs`,
        ratio: `${(cpu('worker') / cpu('inline')).toFixed(2)}× inline`,
        target: '',
      },
    ],
    zeroLoss: [{ name: 'P2w messages lost in worker mode', count: lost('worker') }],
    notes: [
      `${connections} connections from 2 client processes, 1 message in flight each, 32-byte text messages, ${durationMs / 1000} s per round; servers and clients share the same 2 cores.`,
      `lost: worker ${lost('worker')}, inline ${lost('inline')}, raw ${lost('raw')}.`,
      'Worker mode batches events and actions once per event-loop turn each way (setImmediate): one postMessage per batch, not per message.',
    ],
  });
} finally {
  await Promise.all(servers.map((s) => stopChild(s.child)));
  dir.remove();
}
