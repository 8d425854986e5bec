/**
 * C3 failover: 3 nodes on one NATS (their own nats-server with JetStream), N session clients (1,000; 100 with
 * --quick) all on node A, each receiving a numbered tick stream (`t<k>`, k kept in conn.state) and sending numbered
 * messages. A is killed -9; every client reconnects to B or C (chosen at each attempt). Measured from the kill: the
 * time until every client has resumed, and per client, by sequence numbers, ticks and replies lost or duplicated.
 *
 * Baseline in the same run: the same shape with sessions kept in each node's memory (no shared store): the clients
 * reconnect to B or C too, but their sessions died with A (lost-session; the streams start over).
 *
 *   node --import tsx bench/c3-failover.bench.ts [--quick] [--clients N] [--interval MS (tick and message interval, 200)]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type HotlineClient } from '../src/client/index.js';
import { tempDir } from './lib/plugins.js';
import { freePort, waitForPort } from './lib/processes.js';
import { benchArgs, finish } from './lib/report.js';
import { ms } from './lib/stats.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const NODE = path.join(HERE, 'servers/cluster-node.ts');
const args = benchArgs();
const clientsArg = process.argv.indexOf('--clients');
const N = clientsArg > 0 ? Number(process.argv[clientsArg + 1]) : args.quick ? 100 : 1000;
const intervalArg = process.argv.indexOf('--interval');
// Each tick and each message is a write of the session's record (a CAS in the KV bucket): 2 writes per client per
// interval. At 200 ms, 1,000 clients are 10,000 writes/s, more than nats-server and 3 nodes sharing 2 cores take.
const TICK_MS = intervalArg > 0 ? Number(process.argv[intervalArg + 1]) : 200;
const WAIT_MS = 60_000;

const PLUGIN = `
import { definePlugin } from 'hotline';
export default definePlugin<{}, { got: number; tick: number }>({
  name: 'c3', version: '1', api: 1,
  init(ctx) {
    ctx.setInterval(() => { for (const c of ctx.connections) if (c.state) { c.state.tick++; c.send('t' + c.state.tick); } }, ${TICK_MS});
    return {};
  },
  migrate: () => ({}),
  onOpen(conn) { conn.state = { got: 0, tick: 0 }; },
  onMessage(conn, data) { const n = Number(String(data)); if (n !== conn.state.got + 1) conn.send('x' + n); conn.state.got = n; conn.send('r' + n); },
});
`;

function startNode(plugin: string, store: string, bucket: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', NODE, plugin, store, bucket], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /ready (\d+)/.exec(out);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.once('exit', (code) => reject(new Error(`C3 node exited with ${code}: ${out}`)));
  });
}

async function waitFor(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`C3: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** One client's view: numbered ticks and replies; a gap, a repeat or a step back is counted. */
class Check {
  tick = 0;
  reply = 0;
  sent = 0;
  bad = 0;
  resumedAt: number | undefined;
  lostSession = false;
  constructor(c: HotlineClient) {
    c.on('message', (d) => {
      const s = String(d);
      const n = Number(s.slice(1));
      if (s[0] === 't') {
        if (n !== this.tick + 1 && !(this.lostSession && n === 1)) this.bad++;
        this.tick = n;
      } else if (s[0] === 'r') {
        if (n !== this.reply + 1 && !this.lostSession) this.bad++;
        this.reply = n;
      } else this.bad++;
    });
    c.on('resumed', () => (this.resumedAt ??= Date.now()));
    c.on('lost-session', () => {
      this.lostSession = true;
      this.resumedAt ??= Date.now();
    });
  }
}

async function run(store: 'nats' | 'memory', natsUrl: string): Promise<{ allMs: number; p50: number; lost: number; lostSessions: number }> {
  const t = tempDir('c3');
  const plugin = t.write('plugin.ts', PLUGIN);
  const bucket = `c3_${store}_${Date.now()}`;
  const nodes = await Promise.all([0, 1, 2].map(() => startNode(plugin, store === 'nats' ? natsUrl : 'memory', bucket)));
  let alive = [nodes[0]!.port];
  let k = 0;
  const clients = Array.from({ length: N }, () => connect(() => `ws://127.0.0.1:${alive[k++ % alive.length]}/`, { backoff: { initialDelay: 50, maxDelay: 500 } }));
  const checks = clients.map((c) => new Check(c));
  let pumping = true;
  const pump = (async () => {
    while (pumping) {
      clients.forEach((c, i) => c.queued < 100 && c.send(String(++checks[i]!.sent)));
      await new Promise((r) => setTimeout(r, TICK_MS));
    }
  })();
  try {
    await waitFor(() => checks.every((ch) => ch.tick >= 3 && ch.reply >= 2), 'traffic on node A');
    const killedAt = Date.now();
    alive = [nodes[1]!.port, nodes[2]!.port];
    nodes[0]!.child.kill('SIGKILL');
    await waitFor(() => checks.every((ch) => ch.resumedAt !== undefined), 'every client back');
    const times = checks.map((ch) => ch.resumedAt! - killedAt).sort((a, b) => a - b);
    pumping = false;
    await pump;
    // With sessions, every message sent is answered exactly once; the baseline's sessions started over, so their
    // clients' counts mean nothing and are not waited for.
    if (store === 'nats') await waitFor(() => checks.every((ch) => ch.reply === ch.sent), 'every reply');
    const lostSessions = checks.filter((ch) => ch.lostSession).length;
    const lost = checks.reduce((s, ch) => s + ch.bad + (ch.lostSession ? 0 : ch.sent - ch.reply), 0);
    return { allMs: times[times.length - 1]!, p50: times[Math.floor(times.length / 2)]!, lost, lostSessions };
  } finally {
    pumping = false;
    await pump;
    for (const c of clients) c.close();
    for (const n of nodes) n.child.kill('SIGKILL');
    t.remove();
  }
}

const sd = mkdtempSync(path.join(tmpdir(), 'hotline-bench-c3-nats-'));
const port = await freePort();
const nats = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', sd], { stdio: 'ignore' });
try {
  await waitForPort(port, 10_000);
  const url = `nats://127.0.0.1:${port}`;
  const h = await run('nats', url);
  const b = await run('memory', url);
  finish(args, {
    id: 'C3',
    title: 'failover: kill -9 of one of 3 nodes',
    quick: args.quick,
    rows: [
      { figure: `C3 all ${N} sessions resumed after the kill, max (p50)`, hotline: `${ms(h.allMs)} (${ms(h.p50)})`, baseline: `${ms(b.allMs)} (${ms(b.p50)}) to reconnect, sessions lost`, ratio: '', target: 'report' },
      { figure: 'C3 sessions lost', hotline: String(h.lostSessions), baseline: String(b.lostSessions), ratio: '', target: '0', met: h.lostSessions === 0 },
      { figure: 'C3 messages lost or duplicated (both ways)', hotline: String(h.lost), baseline: 'streams start over', ratio: '', target: '0', met: h.lost === 0 },
    ],
    zeroLoss: [
      { name: 'C3 sessions lost', count: h.lostSessions },
      { name: 'C3 messages lost or duplicated', count: h.lost },
    ],
    notes: [`${N} session clients on node A, a tick every ${TICK_MS} ms and a message every ${TICK_MS} ms each, sessions in a NATS KV bucket (own nats-server, JetStream on disk)`],
  });
} finally {
  nats.kill('SIGKILL');
  rmSync(sd, { recursive: true, force: true });
}
