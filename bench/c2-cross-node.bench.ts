/**
 * C2 rooms across nodes (issue 13): 3 nodes, one room of 3,000 members spread evenly over them (600 with --quick), a
 * publisher on each node. Measured for hotline's cluster bus on NATS (its own nats-server) and for socket.io 4 with
 * `@socket.io/redis-adapter` on the local Redis (127.0.0.1:6379), the same shape: every node delivers every
 * publisher's messages to its own members. Each publisher keeps `WINDOW` broadcasts in flight (the next goes when
 * every member has one back). Both clusters' members stay connected at once, in two client processes with the same
 * minimal client (bench/servers/cross-node-members.ts), and the rounds alternate, so machine noise hits both alike;
 * the median round counts. Reported: deliveries per second, the p99 from publish to delivery, the nodes' CPU time
 * per delivery (process.cpuUsage of the 3 node processes), and losses (every member must get every message once).
 *
 *   node --import tsx bench/c2-cross-node.bench.ts [--quick]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { tempDir } from './lib/plugins.js';
import { forkTs, freePort, nextMessage, ofType, stopChild, waitForPort } from './lib/processes.js';
import { benchArgs, finish } from './lib/report.js';
import { Histogram, type HistogramJson, median, ms, ratio } from './lib/stats.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const args = benchArgs();
const NODES = 3;
const MEMBERS = args.quick ? 600 : 3000;
const PROCESSES = 2;
const PER_NODE_PER_PROCESS = MEMBERS / NODES / PROCESSES;
const ROUNDS = args.quick ? 1 : 3;
const ROUND_MS = args.quick ? 1500 : 4000;
const WINDOW = 2;
const PAD = 'x'.repeat(64);
const LOCAL_ADDRESSES = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];

type Kind = 'hotline' | 'socket.io + redis';
const KINDS: Kind[] = ['hotline', 'socket.io + redis'];

interface Round {
  deliveriesPerSec: number;
  cpuUsPerDelivery: number;
  broadcasts: number;
}

interface Result extends Round {
  kind: Kind;
  p50Ms: number;
  p99Ms: number;
  lost: number;
  bad: number;
}

/** Every member joins `room` on open; a publisher's `P` leaves it and answers the room's size (every node's, through presence). */
const ROOM_PLUGIN = `
import { definePlugin } from 'hotline';
export default definePlugin({
  name: 'c2-cross-node', version: '1.0.0', api: 1,
  onOpen(conn) { conn.join('room'); },
  onMessage(conn, data, ctx) {
    if (data === 'P') {
      conn.leave('room');
      return ctx.members('room').then((ids) => void conn.send('ok:' + ids.length));
    }
    ctx.to('room').send(data);
  },
});
`;

const wallNow = () => performance.timeOrigin + performance.now();

async function startServer(file: string, argv: string[]): Promise<{ child: ChildProcess; url: string }> {
  const child = forkTs(file, argv, { fds: 65_536 });
  const ready = await nextMessage(child, ofType<{ type: 'ready'; url: string }>('ready'), 60_000, path.basename(file));
  return { child, url: ready.url };
}

async function cpuMs(server: ChildProcess): Promise<number> {
  const reply = nextMessage(server, ofType<{ type: 'status'; cpuMs: number }>('status'), 30_000, 'server status');
  server.send({ type: 'status' });
  return (await reply).cpuMs;
}

async function cpuOf(servers: ChildProcess[]): Promise<number> {
  return (await Promise.all(servers.map(cpuMs))).reduce((a, b) => a + b, 0);
}

/** A publisher on one node: one WebSocket speaking that server's protocol, publishing `<origin>.<seq>:…`. */
class Publisher {
  readonly origin: number;
  seq = 0;
  #ws: WebSocket;
  #sio: boolean;
  #onOk: ((n: number) => void) | undefined;
  #connected: Promise<void>;

  constructor(url: string, sio: boolean, origin: number) {
    this.origin = origin;
    this.#sio = sio;
    this.#ws = new WebSocket(sio ? `${url}&pub=1` : url, { perMessageDeflate: false });
    this.#connected = new Promise((resolve, reject) => {
      this.#ws.once('error', reject);
      if (!sio) this.#ws.once('open', () => resolve());
      this.#ws.on('message', (data) => {
        const text = String(data);
        if (!sio) {
          if (text.startsWith('ok:')) this.#onOk?.(Number(text.slice(3)));
        } else if (text[0] === '0') this.#ws.send('40');
        else if (text.startsWith('40')) resolve();
        else if (text === '2') this.#ws.send('3');
        else if (text.startsWith('42["ok",')) this.#onOk?.(Number(text.slice(8, -1)));
      });
    });
  }

  async hello(): Promise<number> {
    await this.#connected;
    const ok = new Promise<number>((resolve) => (this.#onOk = resolve));
    this.#ws.send(this.#sio ? '42["P"]' : 'P');
    return ok;
  }

  publish(): void {
    const payload = `${this.origin}.${this.seq++}:${wallNow()}:${PAD}`;
    this.#ws.send(this.#sio ? `42["pub","${payload}"]` : payload);
  }

  close(): void {
    this.#ws.terminate();
  }
}

interface Target {
  kind: Kind;
  group: number;
  servers: ChildProcess[];
  publishers: Publisher[];
}

/** One round against one cluster: every publisher keeps WINDOW in flight for ROUND_MS, then what is in flight lands. */
async function round(t: Target, members: ChildProcess[]): Promise<Round> {
  const cpu0 = await cpuOf(t.servers);
  const acks = new Map<number, number>();
  const first = t.publishers.map((p) => p.seq);
  let completed = 0;
  let lastDone = 0;
  const t0 = performance.now();
  const stopAt = t0 + ROUND_MS;
  const sent = () => t.publishers.reduce((a, p, i) => a + p.seq - first[i]!, 0);
  let onGot!: (m: { type: string; group?: number; origin?: number; seq?: number }) => void;
  const finished = new Promise<void>((resolve) => {
    onGot = (m) => {
      if (m.type !== 'got' || m.group !== t.group) return;
      const key = m.origin! * 2 ** 40 + m.seq!;
      const n = (acks.get(key) ?? 0) + 1;
      if (n < PROCESSES) return void acks.set(key, n);
      acks.delete(key);
      completed++;
      lastDone = performance.now();
      if (lastDone < stopAt) t.publishers[m.origin!]!.publish();
      else if (completed === sent()) resolve();
    };
    for (const m of members) m.on('message', onGot);
  });
  for (const p of t.publishers) for (let i = 0; i < WINDOW; i++) p.publish();
  let bound: NodeJS.Timeout | undefined;
  await Promise.race([finished, new Promise((r) => (bound = setTimeout(r, ROUND_MS + 30_000)))]);
  clearTimeout(bound);
  for (const m of members) m.off('message', onGot);
  const cpu1 = await cpuOf(t.servers);
  const deliveries = completed * MEMBERS;
  return {
    deliveriesPerSec: deliveries / (((lastDone || performance.now()) - t0) / 1000),
    cpuUsPerDelivery: ((cpu1 - cpu0) * 1000) / Math.max(1, deliveries),
    broadcasts: completed,
  };
}

const dir = tempDir('c2');
const natsDir = mkdtempSync(path.join(tmpdir(), 'hotline-bench-c2-nats-'));
const natsPort = await freePort();
const nats = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(natsPort), '-js', '-sd', natsDir], { stdio: 'ignore' });
const servers: ChildProcess[] = [];
const publishers: Publisher[] = [];
const members = Array.from({ length: PROCESSES }, () => forkTs(path.join(HERE, 'servers/cross-node-members.ts'), [], { fds: 65_536 }));
try {
  await waitForPort(natsPort, 10_000);
  const plugin = dir.write('plugin.ts', ROOM_PLUGIN);
  const cluster = { servers: `nats://127.0.0.1:${natsPort}`, name: `c2-${process.pid}` };
  const key = `hotline-bench-c2-${process.pid}`;
  const started = await Promise.all([
    ...Array.from({ length: NODES }, () => startServer(path.join(HERE, 'servers/hotline-server.ts'), [JSON.stringify({ plugin, cluster })])),
    ...Array.from({ length: NODES }, () => startServer(path.join(HERE, 'servers/cross-node-socketio.ts'), ['redis://127.0.0.1:6379', key])),
  ]);
  servers.push(...started.map((s) => s.child));
  const targets: Target[] = [];
  for (const [group, kind] of KINDS.entries()) {
    const nodes = started.slice(group * NODES, group * NODES + NODES);
    const urls = nodes.map((n) => n.url);
    const connected = members.map((m) => nextMessage(m, (x): x is { type: 'connected' } => ofType<{ type: 'connected'; group: number }>('connected')(x) && x.group === group, 180_000, `${kind} members`));
    for (const [i, m] of members.entries()) {
      m.send({ type: 'connect', group, urls, connections: PER_NODE_PER_PROCESS, mode: kind === 'hotline' ? 'ws' : 'sio', localAddresses: LOCAL_ADDRESSES.slice(i * 2, i * 2 + 2) });
    }
    await Promise.all(connected);
    const pubs = urls.map((u, origin) => new Publisher(u, kind !== 'hotline', origin));
    publishers.push(...pubs);
    const deadline = Date.now() + 30_000;
    // hotline's ctx.members covers every node (presence): wait for all members, the publishers gone; socket.io's
    // count is the node's own.
    const expected = kind === 'hotline' ? MEMBERS : MEMBERS / NODES;
    await Promise.all(pubs.map((p) => p.hello())); // every publisher has left the room before any count is awaited
    for (const p of pubs) {
      for (let n = await p.hello(); n !== expected; n = await p.hello()) {
        if (Date.now() > deadline) throw new Error(`${kind}: a node sees ${n} members in the room, not ${expected}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    targets.push({ kind, group, servers: nodes.map((n) => n.child), publishers: pubs });
  }

  const rounds = new Map<Kind, Round[]>(KINDS.map((k) => [k, []]));
  for (let i = 0; i < ROUNDS; i++) {
    for (const t of targets) {
      const r = await round(t, members);
      rounds.get(t.kind)!.push(r);
      console.log(`round ${i + 1} ${t.kind}: ${Math.round(r.deliveriesPerSec).toLocaleString('en-US')} deliveries/s, ${r.cpuUsPerDelivery.toFixed(2)} µs node CPU/delivery, ${r.broadcasts} broadcasts`);
    }
  }
  const results = new Map<Kind, Result>();
  for (const t of targets) {
    const reports = await Promise.all(
      members.map((m) => {
        const r = nextMessage(
          m,
          (x): x is { type: 'report'; group: number; histogram: HistogramJson; deliveries: number; bad: number } =>
            ofType<{ type: 'report'; group: number }>('report')(x) && x.group === t.group,
          30_000,
          'report',
        );
        m.send({ type: 'report', group: t.group });
        return r;
      }),
    );
    const h = new Histogram();
    let delivered = 0;
    let bad = 0;
    for (const r of reports) {
      h.merge(r.histogram);
      delivered += r.deliveries;
      bad += r.bad;
    }
    const rs = rounds.get(t.kind)!;
    const published = t.publishers.reduce((a, p) => a + p.seq, 0);
    results.set(t.kind, {
      kind: t.kind,
      deliveriesPerSec: median(rs.map((r) => r.deliveriesPerSec)),
      cpuUsPerDelivery: median(rs.map((r) => r.cpuUsPerDelivery)),
      broadcasts: rs.reduce((a, r) => a + r.broadcasts, 0),
      p50Ms: h.quantileUs(0.5) / 1000,
      p99Ms: h.quantileUs(0.99) / 1000,
      lost: published * MEMBERS - delivered,
      bad,
    });
  }
  const hot = results.get('hotline')!;
  const sio = results.get('socket.io + redis')!;
  for (const r of [hot, sio]) console.log(`${r.kind}: p50 ${ms(r.p50Ms)}, p99 ${ms(r.p99Ms)}, lost ${r.lost}, bad ${r.bad}`);
  const rate = (r: Result) => `${Math.round(r.deliveriesPerSec).toLocaleString('en-US')}/s`;
  const cpu = (r: Result) => `${r.cpuUsPerDelivery.toFixed(2)} µs`;
  finish(args, {
    id: 'C2',
    title: 'rooms across 3 nodes',
    quick: args.quick,
    rows: [
      {
        figure: `C2 deliveries/s, one room of ${MEMBERS.toLocaleString('en-US')} over 3 nodes, a publisher on each (median of ${ROUNDS})`,
        hotline: rate(hot),
        baseline: `socket.io + redis-adapter: ${rate(sio)}`,
        ratio: ratio(hot.deliveriesPerSec, sio.deliveriesPerSec),
        target: '≥ 1.5× socket.io + redis',
        met: hot.deliveriesPerSec >= 1.5 * sio.deliveriesPerSec,
      },
      {
        figure: 'C2 p99 publish to delivery (all members, all nodes)',
        hotline: ms(hot.p99Ms),
        baseline: `socket.io + redis-adapter: ${ms(sio.p99Ms)}`,
        ratio: ratio(hot.p99Ms, sio.p99Ms),
        target: 'no worse',
        met: hot.p99Ms <= sio.p99Ms,
      },
      {
        figure: 'C2 node CPU per delivery (3 nodes, median round)',
        hotline: cpu(hot),
        baseline: `socket.io + redis-adapter: ${cpu(sio)}`,
        ratio: `${ratio(sio.cpuUsPerDelivery, hot.cpuUsPerDelivery)} less`,
        target: '',
      },
    ],
    zeroLoss: [{ name: 'C2 hotline deliveries lost or bad', count: hot.lost + hot.bad }],
    notes: [
      `${MEMBERS} members (${MEMBERS / NODES} per node) in ${PROCESSES} client processes, both clusters connected at once, one publisher per node with ${WINDOW} broadcasts in flight each, ${PAD.length + 24}-byte text messages, ${ROUNDS} alternating round(s) of ${ROUND_MS / 1000} s per cluster. hotline: NATS 2.9 (own server); socket.io: Redis at 127.0.0.1:6379. Nodes, NATS, Redis and members share the same 2 cores.`,
      `broadcasts: hotline ${hot.broadcasts}, socket.io ${sio.broadcasts}; lost: hotline ${hot.lost} (bad ${hot.bad}), socket.io ${sio.lost} (bad ${sio.bad}); p50 hotline ${ms(hot.p50Ms)}, socket.io ${ms(sio.p50Ms)}.`,
    ],
  });
} finally {
  for (const p of publishers) p.close();
  for (const m of members) if (m.connected) m.send({ type: 'close' });
  await Promise.all([...members, ...servers].map((c) => stopChild(c)));
  nats.kill('SIGKILL');
  rmSync(natsDir, { recursive: true, force: true });
  dir.remove();
}
