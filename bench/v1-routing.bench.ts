/**
 * V1 version routing (issue 12): server CPU per echoed message with one live version (the single-target path every
 * host runs), with two live versions (a pinned v1 holding half the connections, v2 the other half), and a raw `ws`
 * echo, in the same run; then the heap of the pinned v1 (a plugin holding ~16 MB) released after its last connection.
 *
 *   node --import tsx bench/v1-routing.bench.ts [--quick]
 *
 * `V1_BEFORE=/path/to/other-checkout/bench/servers/hotline-server.ts` adds a row for a checkout from before issue 12
 * (one dispatcher target read per event), measured in the same rounds.
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
  live?: number;
}

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
  const singlePlugin = dir.write('single/plugin.ts', echoPlugin());
  const single = await start(path.join(HERE, 'servers/hotline-server.ts'), [JSON.stringify({ plugin: singlePlugin })]);
  servers.push(single.child);
  const pinPlugin = dir.write('pin/plugin.ts', ballastPlugin('v1', 16));
  const pinned = await start(path.join(HERE, 'servers/hotline-server.ts'), [JSON.stringify({ plugin: pinPlugin })], ['--expose-gc']);
  servers.push(pinned.child);

  const beforeFile = process.env.V1_BEFORE;
  const before = beforeFile ? await start(beforeFile, [JSON.stringify({ plugin: singlePlugin })]) : undefined;
  if (before) servers.push(before.child);
  const half = connections / 2;
  const rawG = await LoadGroup.connect({ url: raw.url, connections, processes: 2 });
  const singleG = await LoadGroup.connect({ url: single.url, connections, processes: 2 });
  const oldG = await LoadGroup.connect({ url: pinned.url, connections: half, processes: 1 });
  groups.push(rawG, singleG, oldG);
  const beforeG = before ? await LoadGroup.connect({ url: before.url, connections, processes: 2 }) : undefined;
  if (beforeG) groups.push(beforeG);
  const beforeRuns: number[] = [];
  dir.write('pin/plugin.ts', echoPlugin('v2'));
  pinned.child.send({ type: 'reload', policy: 'pin' });
  const reloaded = await nextMessage(pinned.child, ofType<{ type: 'reloaded'; record?: { outcome: string }; error?: string }>('reloaded'), 60_000, 'pin reload');
  if (reloaded.record?.outcome !== 'pinned') throw new Error(`pin reload: ${reloaded.error ?? reloaded.record?.outcome}`);
  const newG = await LoadGroup.connect({ url: pinned.url, connections: half, processes: 1 });
  groups.push(newG);

  const rawRuns: number[] = [];
  const singleRuns: number[] = [];
  const pinRuns: number[] = [];
  let lost = 0;
  for (let i = 0; i < rounds; i++) {
    const r = await cpuPerMessage(raw.child, [rawG]);
    const s = await cpuPerMessage(single.child, [singleG]);
    const p = await cpuPerMessage(pinned.child, [oldG, newG]);
    if (before && beforeG) beforeRuns.push((await cpuPerMessage(before.child, [beforeG])).us);
    rawRuns.push(r.us);
    singleRuns.push(s.us);
    pinRuns.push(p.us);
    lost += s.lost + p.lost;
    console.log(`round ${i + 1}: raw ${r.us.toFixed(1)} µs/msg, one version ${s.us.toFixed(1)} µs/msg, two live versions ${p.us.toFixed(1)} µs/msg${before ? `, before issue 12 ${beforeRuns.at(-1)!.toFixed(1)} µs/msg` : ''}`);
  }
  const rawUs = median(rawRuns);
  const singleUs = median(singleRuns);
  const pinUs = median(pinRuns);

  // The pinned v1 holds its ballast until its last connection closes; then it retires and its module is collected.
  const withV1 = await status(pinned.child, true);
  await oldG.close();
  groups.splice(groups.indexOf(oldG), 1);
  let after = await status(pinned.child, true);
  for (let i = 0; i < 50 && after.live !== 1; i++) {
    await new Promise((r) => setTimeout(r, 100));
    after = await status(pinned.child, true);
  }
  after = await status(pinned.child, true);
  const releasedMb = (withV1.heapUsed - after.heapUsed) / 1024 / 1024;

  finish(args, {
    id: 'V1',
    title: 'version routing',
    quick: args.quick,
    rows: [
      {
        figure: `V1 server CPU per echoed message, two live versions (pinned v1 + v2, ${half} conns each)`,
        hotline: `${pinUs.toFixed(1)} µs`,
        baseline: `one version: ${singleUs.toFixed(1)} µs`,
        ratio: `${(pinUs / singleUs).toFixed(2)}×`,
        target: '≤ 1.05× of one version',
        met: pinUs / singleUs <= 1.05,
      },
      {
        figure: 'V1 server CPU per echoed message, one version vs raw ws',
        hotline: `${singleUs.toFixed(1)} µs`,
        baseline: `raw ws: ${rawUs.toFixed(1)} µs`,
        ratio: `${(singleUs / rawUs).toFixed(2)}×`,
        target: '',
      },
      ...(beforeRuns.length > 0
        ? [{ figure: 'V1 server CPU per echoed message, one version vs the checkout before issue 12', hotline: `${singleUs.toFixed(1)} µs`, baseline: `before: ${median(beforeRuns).toFixed(1)} µs`, ratio: `${(singleUs / median(beforeRuns)).toFixed(2)}×`, target: '' }]
        : []),
      {
        figure: 'V1 heap released when the pinned v1 (16 MB of module data) lost its last connection',
        hotline: `${releasedMb.toFixed(1)} MB`,
        baseline: 'its ballast: 16.0 MB',
        ratio: `${(releasedMb / 16).toFixed(2)}×`,
        target: '≥ 0.9× of its ballast',
        met: releasedMb >= 16 * 0.9,
      },
    ],
    zeroLoss: [],
    notes: [
      `${connections} connections per server from client processes, 1 message in flight each, 32-byte text, ${durationMs / 1000} s per round, median of ${rounds}; servers and clients share the same 2 cores. CPU is process.cpuUsage() of the server.`,
      `messages lost in hotline rounds: ${lost}. live versions after v1's last connection: ${after.live}.`,
    ],
  });
} finally {
  await Promise.all(groups.map((g) => g.close().catch(() => undefined)));
  await Promise.all(servers.map((c) => stopChild(c)));
  dir.remove();
}
