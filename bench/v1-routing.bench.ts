/**
 * V1 version routing (issue 12): server CPU per echoed message with one live version (the single-target path every
 * host runs), with two live versions (a pinned v1 holding half the connections, v2 the other half), and a raw `ws`
 * echo, in the same run; then the memory of the pinned v1 (a plugin holding ~16 MB) released after its last
 * connection. Both isolations: inline (the heap of the host's isolate) and worker (each live version its own thread;
 * the process RSS, since a retired version's heap goes with its terminated thread).
 *
 *   node --import tsx bench/v1-routing.bench.ts [--quick]
 *
 * `V1_BEFORE=/path/to/other-checkout/bench/servers/hotline-server.ts` adds rows for a checkout from before a change
 * (one version, each isolation), measured in the same rounds.
 */
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LoadGroup } from './load-client.js';
import { echoPlugin, rawEchoServer, tempDir } from './lib/plugins.js';
import { forkTs, nextMessage, ofType, stopChild } from './lib/processes.js';
import { benchArgs, finish } from './lib/report.js';
import { median } from './lib/stats.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const args = benchArgs();
const connections = args.quick ? 40 : 100;
const rounds = args.quick ? 1 : 3;
const durationMs = args.quick ? 1500 : 4000;

interface Status {
  type: 'status';
  cpuMs: number;
  heapUsed: number;
  rss?: number;
  live?: number;
}

type Isolation = 'inline' | 'worker';

/** An echo plugin whose module holds `mb` MB, so a retired version's release shows in the heap. */
function ballastPlugin(tag: string, mb: number): string {
  return echoPlugin(tag).replace("import { definePlugin } from 'hotline';", `import { definePlugin } from 'hotline';\nconst ballast = Array.from({ length: ${mb * 16} }, (_, i) => (String(i) + "x".repeat(65_536)).split("").join(""));\nexport const keep = ballast;`);
}

async function start(file: string, argv: string[], nodeFlags: string[] = []): Promise<{ child: ChildProcess; url: string }> {
  const child = forkTs(file, argv, { nodeFlags });
  const ready = await nextMessage(child, ofType<{ type: 'ready'; url: string }>('ready'), 60_000, path.basename(file));
  return { child, url: ready.url };
}

async function status(child: ChildProcess, gc = false): Promise<Status> {
  child.send({ type: 'status', gc });
  return nextMessage(child, ofType<Status>('status'), 10_000, 'status');
}

/** Server µs of CPU per echoed message, over `groups` running at once. */
async function cpuPerMessage(child: ChildProcess, groups: LoadGroup[]): Promise<{ us: number; received: number; lost: number }> {
  const c0 = (await status(child)).cpuMs;
  const results = await Promise.all(groups.map((g) => g.run({ mode: 'pingpong', window: 1, durationMs, payload: 32 })));
  const c1 = (await status(child)).cpuMs;
  const received = results.reduce((a, r) => a + r.received, 0);
  return { us: ((c1 - c0) * 1000) / Math.max(1, received), received, lost: results.reduce((a, r) => a + r.lost, 0) };
}

const dir = tempDir('v1');
const servers: ChildProcess[] = [];
const groups: LoadGroup[] = [];

interface ModeResult {
  isolation: Isolation;
  singleUs: number;
  pinUs: number;
  beforeUs: number | undefined;
  releasedMb: number;
  liveAfter: number | undefined;
  lost: number;
}

/** One isolation: one version, two live versions (pinned v1 + v2), and what the pinned v1 releases at its retire. */
async function measure(isolation: Isolation, rawG: LoadGroup, rawRuns: number[]): Promise<ModeResult> {
  const half = connections / 2;
  const singlePlugin = dir.write(`${isolation}/single/plugin.ts`, echoPlugin());
  const single = await start(path.join(HERE, 'servers/hotline-server.ts'), [JSON.stringify({ plugin: singlePlugin, isolation })]);
  servers.push(single.child);
  const pinPlugin = dir.write(`${isolation}/pin/plugin.ts`, ballastPlugin('v1', 16));
  const pinned = await start(path.join(HERE, 'servers/hotline-server.ts'), [JSON.stringify({ plugin: pinPlugin, isolation })], ['--expose-gc']);
  servers.push(pinned.child);
  const beforeFile = process.env.V1_BEFORE;
  const before = beforeFile ? await start(beforeFile, [JSON.stringify({ plugin: singlePlugin, isolation })]) : undefined;
  if (before) servers.push(before.child);

  const singleG = await LoadGroup.connect({ url: single.url, connections, processes: 2 });
  const oldG = await LoadGroup.connect({ url: pinned.url, connections: half, processes: 1 });
  groups.push(singleG, oldG);
  const beforeG = before ? await LoadGroup.connect({ url: before.url, connections, processes: 2 }) : undefined;
  if (beforeG) groups.push(beforeG);
  dir.write(`${isolation}/pin/plugin.ts`, echoPlugin('v2'));
  pinned.child.send({ type: 'reload', policy: 'pin' });
  const reloaded = await nextMessage(pinned.child, ofType<{ type: 'reloaded'; record?: { outcome: string }; error?: string }>('reloaded'), 60_000, 'pin reload');
  if (reloaded.record?.outcome !== 'pinned') throw new Error(`${isolation} pin reload: ${reloaded.error ?? reloaded.record?.outcome}`);
  const newG = await LoadGroup.connect({ url: pinned.url, connections: half, processes: 1 });
  groups.push(newG);

  const singleRuns: number[] = [];
  const pinRuns: number[] = [];
  const beforeRuns: number[] = [];
  let lost = 0;
  for (let i = 0; i < rounds; i++) {
    const r = await cpuPerMessage(rawServer!, [rawG]);
    const s = await cpuPerMessage(single.child, [singleG]);
    const p = await cpuPerMessage(pinned.child, [oldG, newG]);
    if (before && beforeG) beforeRuns.push((await cpuPerMessage(before.child, [beforeG])).us);
    rawRuns.push(r.us);
    singleRuns.push(s.us);
    pinRuns.push(p.us);
    lost += s.lost + p.lost;
    console.log(`${isolation} round ${i + 1}: raw ${r.us.toFixed(1)} µs/msg, one version ${s.us.toFixed(1)} µs/msg, two live versions ${p.us.toFixed(1)} µs/msg${before ? `, before ${beforeRuns.at(-1)!.toFixed(1)} µs/msg` : ''}`);
  }

  // The pinned v1 holds its ballast until its last connection closes; then it retires: inline, its module is
  // collected (heap); worker, its thread is terminated (RSS).
  const used = (st: Status) => (isolation === 'inline' ? st.heapUsed : st.rss ?? 0);
  const withV1 = await status(pinned.child, true);
  await oldG.close();
  groups.splice(groups.indexOf(oldG), 1);
  let after = await status(pinned.child, true);
  for (let i = 0; i < 50 && after.live !== 1; i++) {
    await new Promise((r) => setTimeout(r, 100));
    after = await status(pinned.child, true);
  }
  // A terminated thread's memory is returned as the isolate tears down: read again until it settles (bounded).
  for (let i = 0; i < 20 && isolation === 'worker'; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const next = await status(pinned.child, true);
    if (Math.abs(used(next) - used(after)) < 256 * 1024) break;
    after = next;
  }
  after = await status(pinned.child, true);
  return {
    isolation,
    singleUs: median(singleRuns),
    pinUs: median(pinRuns),
    beforeUs: beforeRuns.length > 0 ? median(beforeRuns) : undefined,
    releasedMb: (used(withV1) - used(after)) / 1024 / 1024,
    liveAfter: after.live,
    lost,
  };
}

let rawServer: ChildProcess | undefined;
try {
  // P2's raw ws echo, answering `status` with its CPU like the hotline server.
  const rawSource = rawEchoServer() + `
process.on('message', (m) => {
  if (m.type !== 'status') return;
  const cpu = process.cpuUsage();
  process.send({ type: 'status', cpuMs: (cpu.user + cpu.system) / 1000, heapUsed: 0 });
});
`;
  const raw = await start(dir.write('raw-echo.mjs', rawSource), []);
  servers.push(raw.child);
  rawServer = raw.child;
  const rawG = await LoadGroup.connect({ url: raw.url, connections, processes: 2 });
  groups.push(rawG);
  const rawRuns: number[] = [];
  const results: ModeResult[] = [];
  for (const isolation of ['inline', 'worker'] as const) results.push(await measure(isolation, rawG, rawRuns));
  const rawUs = median(rawRuns);
  const half = connections / 2;

  finish(args, {
    id: 'V1',
    title: 'version routing',
    quick: args.quick,
    rows: results.flatMap((m) => {
      const tag = m.isolation === 'inline' ? 'V1' : 'V1 worker';
      const unit = m.isolation === 'inline' ? 'heap' : 'RSS';
      return [
        {
          figure: `${tag} server CPU per echoed message, two live versions (pinned v1 + v2, ${half} conns each)`,
          hotline: `${m.pinUs.toFixed(1)} µs`,
          baseline: `one version: ${m.singleUs.toFixed(1)} µs`,
          ratio: `${(m.pinUs / m.singleUs).toFixed(2)}×`,
          target: m.isolation === 'inline' ? '≤ 1.05× of one version' : '',
          ...(m.isolation === 'inline' && { met: m.pinUs / m.singleUs <= 1.05 }),
        },
        {
          figure: `${tag} server CPU per echoed message, one version vs raw ws`,
          hotline: `${m.singleUs.toFixed(1)} µs`,
          baseline: `raw ws: ${rawUs.toFixed(1)} µs`,
          ratio: `${(m.singleUs / rawUs).toFixed(2)}×`,
          target: '',
        },
        ...(m.beforeUs !== undefined
          ? [{ figure: `${tag} server CPU per echoed message, one version vs the V1_BEFORE checkout`, hotline: `${m.singleUs.toFixed(1)} µs`, baseline: `before: ${m.beforeUs.toFixed(1)} µs`, ratio: `${(m.singleUs / m.beforeUs).toFixed(2)}×`, target: '' }]
          : []),
        {
          figure: `${tag} ${unit} released when the pinned v1 (16 MB of module data) lost its last connection`,
          hotline: `${m.releasedMb.toFixed(1)} MB`,
          baseline: 'its ballast: 16.0 MB',
          ratio: `${(m.releasedMb / 16).toFixed(2)}×`,
          target: '≥ 0.9× of its ballast',
          met: m.releasedMb >= 16 * 0.9,
        },
      ];
    }),
    zeroLoss: [],
    notes: [
      `${connections} connections per server from client processes, 1 message in flight each, 32-byte text, ${durationMs / 1000} s per round, median of ${rounds} (raw ws: of the rounds of both isolations); servers and clients share the same 2 cores. CPU is process.cpuUsage() of the server (every thread: a worker version's included).`,
      ...results.map((m) => `${m.isolation}: messages lost in hotline rounds: ${m.lost}; live versions after v1's last connection: ${m.liveAfter}.`),
    ],
  });
} finally {
  await Promise.all(groups.map((g) => g.close().catch(() => undefined)));
  await Promise.all(servers.map((c) => stopChild(c)));
  dir.remove();
}
