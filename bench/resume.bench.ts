/**
 * Reconnect-and-resume after a host restart: 1,000 session clients (100 with --quick) on a host with the file store,
 * each with unacknowledged server messages; the host closes (drain with a reconnect hint) and a new host starts on the
 * same store. Prints p50/p99 of the time from the socket closing to `resumed` (it includes the new host's start),
 * and messages replayed vs lost or wrong (must be 0). Baseline in the same run: the cost of the store's write before each send (file store vs memory store).
 *
 *   node --import tsx bench/resume.bench.ts [--quick]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect, type HotlineClient } from '../src/client/index.js';
import { createHost, FileSessionStore, MemorySessionStore } from '../src/index.js';
import type { SessionStore } from '../src/session/store.js';
import { pluginDir } from '../test/helpers/plugin-dir.js';
import { quietLogger } from '../test/helpers/quiet-logger.js';

const quick = process.argv.includes('--quick');
const N = quick ? 100 : 1000;
const PER_CLIENT = 5;

// Each message from a client is answered with PER_CLIENT replies the client has not acknowledged yet at the restart.
const PLUGIN = `
import { definePlugin } from 'hotline';
export default definePlugin({
  name: 'burst', version: '1.0.0', api: 1,
  onMessage(conn, data) { for (let i = 0; i < ${PER_CLIENT}; i++) conn.send(String(data) + ':' + i); },
});
`;

function pct(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function waitFor(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  if (!cond()) throw new Error('bench: timed out');
}

/** µs per store write of one message (what the session layer does before every send). */
function writeCost(store: SessionStore, n: number): number {
  store.write('bench', { create: true, touchedAt: Date.now() });
  const t0 = process.hrtime.bigint();
  for (let i = 1; i <= n; i++) store.write('bench', { out: [i, 'message ' + i], inSeq: i, state: '{"n":' + i + '}', touchedAt: Date.now() });
  return Number(process.hrtime.bigint() - t0) / 1000 / n;
}

async function main(): Promise<void> {
  const p = pluginDir(PLUGIN);
  const dir = mkdtempSync(path.join(tmpdir(), 'hotline-bench-sessions-'));
  const host1 = await createHost({ plugin: p.entry, sessions: { store: new FileSessionStore(dir), reconnectDelay: 50, ackInterval: 60_000 }, logger: quietLogger, drain: { batchSize: 1000, interval: 10 } });
  let port = host1.addresses()[0]!.port;
  const clients: HotlineClient[] = [];
  const received = new Map<HotlineClient, string[]>();
  const closedAt = new Map<HotlineClient, number>();
  const resumedIn: number[] = [];
  let replayed = 0;
  let lost = 0;
  for (let i = 0; i < N; i++) {
    // ackInterval large on both sides: the replies stay unacknowledged, so the restart must replay them.
    const c = connect(() => `ws://127.0.0.1:${port}/`, { ackInterval: 60_000 });
    const got: string[] = [];
    received.set(c, got);
    c.on('message', (d) => got.push(String(d)));
    c.on('reconnecting', () => closedAt.has(c) || closedAt.set(c, performance.now()));
    c.on('resumed', (info) => {
      resumedIn.push(performance.now() - closedAt.get(c)!);
      replayed += info.replayed;
    });
    c.on('lost-session', () => lost++);
    clients.push(c);
  }
  await waitFor(() => clients.every((c) => c.state === 'open'), 60_000);
  clients.forEach((c, i) => c.send('c' + i));
  await waitFor(() => clients.every((c) => received.get(c)!.length === PER_CLIENT), 60_000);
  // The replies are unacknowledged, so the new host holds them for replay; each client must end with each exactly once.
  const t0 = performance.now();
  await host1.close();
  const host2 = await createHost({ plugin: p.entry, sessions: { store: new FileSessionStore(dir) }, logger: quietLogger });
  port = host2.addresses()[0]!.port;
  await waitFor(() => resumedIn.length + lost === N, 60_000);
  const total = performance.now() - t0;
  let wrong = 0;
  for (const [i, c] of clients.entries()) {
    const got = received.get(c)!;
    const want = Array.from({ length: PER_CLIENT }, (_, k) => `c${i}:${k}`);
    if (got.join() !== want.join()) wrong++;
  }
  for (const c of clients) c.close();
  await host2.close();
  rmSync(dir, { recursive: true, force: true });
  p.remove();

  const fileDir = mkdtempSync(path.join(tmpdir(), 'hotline-bench-write-'));
  const fileStore = new FileSessionStore(fileDir, { compactBytes: 1 << 30 });
  const fileUs = writeCost(fileStore, quick ? 2_000 : 20_000);
  fileStore.close();
  rmSync(fileDir, { recursive: true, force: true });
  const memUs = writeCost(new MemorySessionStore(), quick ? 2_000 : 20_000);

  const sorted = resumedIn.sort((x, y) => x - y);
  console.log(`resume after restart, ${N} clients (file store, ${PER_CLIENT} unacked replies each)`);
  console.log(`  reconnect-and-resume  p50 ${pct(sorted, 0.5).toFixed(1)} ms   p99 ${pct(sorted, 0.99).toFixed(1)} ms   all ${total.toFixed(0)} ms`);
  console.log(`  resumed ${resumedIn.length}/${N}   lost sessions ${lost}   messages replayed ${replayed}   lost or wrong ${wrong}`);
  console.log(`  store write before each send: file ${fileUs.toFixed(2)} µs   memory ${memUs.toFixed(2)} µs (baseline)`);
  if (lost > 0 || wrong > 0) process.exitCode = 1;
}

await main();
