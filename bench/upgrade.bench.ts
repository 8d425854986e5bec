/**
 * U1, process upgrade under load (issue 4): N live WebSocket connections handed to a new worker by `hotline upgrade`.
 * Reports the duration, moved, sentAway and failed counts, closes seen by clients, and connects refused during the
 * upgrade by a bounded connect loop. Baseline in the same run: the same number of sockets moved to a child the naive
 * way, one `child.send(msg, socket)` each through Node's IPC channel (DESIGN.md §6), which is what a tool without a
 * handle lane gets. Target: ≤ 1 s for 10,000, 0 dropped, 0 refused.
 *
 *   node --import tsx bench/upgrade.bench.ts [--quick] [--report FILE]   (needs `npm run build`; from the repository root)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';
import { fileURLToPath } from 'node:url';
import { adminRequest } from '../src/admin/admin-client.js';
import type { UpgradeSummary } from '../src/handoff/upgrade.js';
import { forkTs, nextMessage, ofType, stopChild } from './lib/processes.js';
import { benchArgs, finish } from './lib/report.js';
import { ms, ratio } from './lib/stats.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const args = benchArgs();
const quick = args.quick;
const N = quick ? 1_000 : 10_000;
const CONNECT_LOOP = 200;

const dir = mkdtempSync(path.join(tmpdir(), 'hotline-bench-upgrade-'));
const entry = path.join(dir, 'plugin.ts');
writeFileSync(
  entry,
  `import { definePlugin } from 'hotline';
export default definePlugin({ name: 'echo', version: '1', api: 1, onMessage(conn, data) { conn.send(data); } });
`,
);
const admin = path.join(dir, 'admin.sock');
const sup = spawn(process.execPath, ['bin/hotline.js', 'start', entry, '--port', '0', '--admin', admin], { stdio: ['ignore', 'pipe', process.env.BENCH_STDERR ? 'inherit' : 'ignore'] });
const ready = await new Promise<string>((resolve) => createInterface({ input: sup.stdout! }).once('line', resolve));
const port = Number(/:(\d+)\//.exec(ready)![1]);

let closes = 0;
const clients: WebSocket[] = [];
for (let i = 0; i < N; i += 200) {
  await Promise.all(
    Array.from({ length: Math.min(200, N - i) }, () => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
      clients.push(ws);
      ws.on('close', () => closes++);
      ws.on('error', () => undefined);
      return new Promise((resolve) => ws.once('open', resolve));
    }),
  );
}

// A bounded connect loop during the upgrade: each attempt is a TCP connect to the listener.
let refused = 0;
let attempts = 0;
let looping = true;
const loop = (async () => {
  while (looping && attempts < CONNECT_LOOP * 50) {
    attempts++;
    await new Promise<void>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve()));
      s.once('error', () => (refused++, resolve()));
    });
  }
})();
const summary = (await adminRequest(admin, 'upgrade', 120_000)) as UpgradeSummary;
looping = false;
await loop;

// Every client still answers after the upgrade.
let echoed = 0;
await Promise.all(
  clients.map(
    (ws, i) =>
      new Promise<void>((resolve) => {
        if (ws.readyState !== WebSocket.OPEN) return resolve();
        ws.once('message', () => (echoed++, resolve()));
        ws.send(`after ${i}`);
      }),
  ),
);
// Closes seen up to here count; the ones this cleanup causes do not.
const closedDuringUpgrade = closes;
for (const ws of clients) ws.terminate();
sup.kill('SIGTERM');
await new Promise((resolve) => sup.once('exit', resolve));
rmSync(dir, { recursive: true, force: true });

const naive = await naiveHandoff(N);
const t = summary.timings ?? {};
const handoff = t.acked !== undefined && t.ready !== undefined ? t.acked - t.ready : undefined;
const failed = summary.outcome === 'committed' ? summary.failed : N;
finish(args, {
  id: 'U1',
  title: 'process upgrade',
  quick,
  rows: [
    {
      figure: `U1 upgrade of ${N.toLocaleString('en')} live WS connections, duration`,
      hotline: `${ms(summary.durationMs)} (handoff ${handoff !== undefined ? ms(handoff) : 'n/a'})`,
      baseline: `naive child.send per socket: ${ms(naive.ms)}`,
      ratio: handoff !== undefined ? `handoff ${ratio(handoff, naive.ms)} of naive` : 'n/a',
      target: N >= 10_000 ? '≤ 1 s' : '≤ 1 s for 10,000 (quick: 1,000)',
      met: N >= 10_000 ? summary.durationMs <= 1000 : undefined,
    },
    {
      figure: 'U1 connections dropped / refused during the upgrade',
      hotline: `${summary.moved} moved, ${summary.sentAway} sentAway, ${failed} failed, ${closedDuringUpgrade} closed, ${refused} of ${attempts} connects refused`,
      baseline: 'a restart closes every connection (P5)',
      ratio: '',
      target: '0 dropped, 0 refused',
      met: failed === 0 && closedDuringUpgrade === 0 && refused === 0 && echoed === N,
    },
  ],
  zeroLoss: [
    { name: 'U1 failed', count: failed },
    { name: 'U1 client closes', count: closedDuringUpgrade },
    { name: 'U1 connects refused', count: refused },
    { name: 'U1 clients not answering after the upgrade', count: N - echoed },
  ],
  notes: [
    `U1 outcome ${summary.outcome}${summary.error ? ` ${summary.error.code}` : ''}; steps from the request: ready ${t.ready} ms, exported ${t.exported} ms, acked ${t.acked} ms, committed ${t.committed} ms; ` +
      `${((summary.durationMs * 1000) / Math.max(summary.moved, 1)).toFixed(0)} µs per connection in all; global state ${summary.stateBytes} bytes.`,
    `U1 baseline: ${N.toLocaleString('en')} idle TCP sockets sent to a child one IPC message each (Node waits for an ack per handle), ${((naive.ms * 1000) / N).toFixed(0)} µs per socket; it moves no ws state and no unread bytes.`,
  ],
});

/**
 * The baseline: move `n` accepted sockets to a child with one `child.send(msg, socket)` each, timed until it holds
 * them all. The client ends live in a third process, so no process needs more than ~n descriptors.
 */
async function naiveHandoff(n: number): Promise<{ ms: number }> {
  const SINK = path.join(HERE, 'servers/handle-sink.ts');
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port: p } = server.address() as net.AddressInfo;
  const accepted: net.Socket[] = [];
  server.on('connection', (s) => accepted.push(s));
  const connector = forkTs(SINK, ['connect', String(n), String(p)]);
  await nextMessage(connector, ofType<{ type: 'connected' }>('connected'), 120_000, 'baseline connector');
  while (accepted.length < n) await new Promise((resolve) => server.once('connection', resolve));
  const sink = forkTs(SINK, ['sink', String(n)]);
  await nextMessage(sink, ofType<{ type: 'ready' }>('ready'), 30_000, 'baseline sink');
  const t0 = performance.now();
  const held = nextMessage(sink, ofType<{ type: 'held' }>('held'), 300_000, 'baseline sink');
  for (const s of accepted) sink.send({ type: 'socket' }, s);
  await held;
  const elapsed = performance.now() - t0;
  await Promise.all([stopChild(sink), stopChild(connector)]);
  for (const s of accepted) s.destroy();
  server.close();
  return { ms: elapsed };
}
