/**
 * Process upgrade under load (issue 4): N live WebSocket connections handed to a new worker by `hotline upgrade`.
 * Prints the duration, moved, drained and failed counts, closes seen by clients, and connects refused during the
 * upgrade by a bounded connect loop. Baseline in the same run: the cost of one handle per IPC message, the figure
 * DESIGN.md §6 measured at ~0.33 ms per socket. Target: ≤ 1 s for 10,000, 0 dropped, 0 refused.
 *
 *   node --import tsx bench/upgrade.bench.ts [--quick]      (needs `npm run build`; run from the repository root)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';
import { adminRequest } from '../src/admin/admin-client.js';
import type { UpgradeSummary } from '../src/handoff/upgrade.js';

const quick = process.argv.includes('--quick');
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
const perSocket = summary.durationMs / Math.max(summary.moved, 1);
console.log(`upgrade of ${N} live WebSocket connections (${quick ? 'quick' : 'full'})`);
console.log(`  outcome          ${summary.outcome}${summary.error ? ` ${summary.error.code}` : ''}`);
console.log(`  duration         ${summary.durationMs} ms (target <= 1000 ms for 10,000)`);
console.log(`  moved            ${summary.moved}; drained ${summary.drained}; failed ${summary.failed}`);
console.log(`  per connection   ${perSocket.toFixed(3)} ms (baseline: one handle per IPC message, ~0.33 ms, DESIGN.md §6)`);
const t = summary.timings ?? {};
const handoff = t.acked !== undefined && t.ready !== undefined ? t.acked - t.ready : undefined;
console.log(
  `  steps            ready ${t.ready} ms, exported ${t.exported} ms, acked ${t.acked} ms, committed ${t.committed} ms` +
    (handoff !== undefined ? ` (handoff ${handoff} ms, ${((handoff * 1000) / Math.max(summary.moved, 1)).toFixed(0)} µs per connection)` : ''),
);
console.log(`  state moved      ${summary.stateBytes} bytes`);
console.log(`  client closes    ${closes}; echo after upgrade ${echoed}/${N}`);
console.log(`  connect loop     ${attempts} attempts, ${refused} refused`);
for (const ws of clients) ws.terminate();
sup.kill('SIGTERM');
await new Promise((resolve) => sup.once('exit', resolve));
rmSync(dir, { recursive: true, force: true });
