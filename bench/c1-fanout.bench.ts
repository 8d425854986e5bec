/**
 * C1 fan-out on one node (issue 13): one room of 10,000 members (1,000 with --quick), one publisher, broadcasts kept
 * `WINDOW` in flight (the next one goes when every member has one `WINDOW` back). Measured for hotline's
 * `ctx.to(room).send(data)`, socket.io 4's `io.to(room).emit`, and a raw `ws` loop (`ws.send` to every socket), each
 * server in its own process. The members of all three rooms stay connected at once, in two client processes that
 * speak each server's wire protocol with the same minimal client (bench/servers/fanout-members.ts), and the rounds
 * alternate between the servers, so machine noise hits all three alike; the median round counts. Reported:
 * deliveries per second, the p99 from publish to delivery, and the server's CPU time per delivery (process.cpuUsage
 * of the server process over its rounds).
 *
 *   node --import tsx bench/c1-fanout.bench.ts [--quick]
 */
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { tempDir } from './lib/plugins.js';
import { forkTs, nextMessage, ofType, stopChild } from './lib/processes.js';
import { benchArgs, finish } from './lib/report.js';
import { Histogram, type HistogramJson, median, ms, ratio } from './lib/stats.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const args = benchArgs();
const MEMBERS = args.quick ? 1000 : 10_000;
const PROCESSES = 2;
const ROUNDS = args.quick ? 1 : 3;
const ROUND_MS = args.quick ? 1500 : 4000;
const WINDOW = 2;
const PAD = 'x'.repeat(64);
/** Source addresses for the members, so three rooms' worth of connections never run short of ephemeral ports. */
const LOCAL_ADDRESSES = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];

type Kind = 'hotline' | 'socket.io' | 'raw ws';
const KINDS: Kind[] = ['hotline', 'socket.io', 'raw ws'];

interface Round {
  deliveriesPerSec: number;
  cpuUsPerDelivery: number;
  broadcasts: number;
  /** Deliveries that did not arrive within the bound after the round. */
  lost: number;
}

interface Result {
  kind: Kind;
  deliveriesPerSec: number;
  cpuUsPerDelivery: number;
  p50Ms: number;
  p99Ms: number;
  broadcasts: number;
  lost: number;
  bad: number;
}

/** Every member joins `room` on open; the publisher's `P` leaves it and answers the room size. */
const ROOM_PLUGIN = `
import { definePlugin } from 'hotline';
export default definePlugin({
  name: 'c1-fanout', version: '1.0.0', api: 1,
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

/** The publisher: one WebSocket speaking the server's protocol; `hello()` resolves with the room size it reports. */
class Publisher {
  #ws: WebSocket;
  #sio: boolean;
  #onOk: ((n: number) => void) | undefined;
  #connected: Promise<void>;

  constructor(url: string, sio: boolean) {
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

  publish(seq: number): void {
    const payload = `${seq}:${wallNow()}:${PAD}`;
    this.#ws.send(this.#sio ? `42["pub","${payload}"]` : payload);
  }

  close(): void {
    this.#ws.terminate();
  }
}

interface Target {
  kind: Kind;
  group: number;
  server: ChildProcess;
  publisher: Publisher;
  /** The next sequence number: it goes on across rounds, so a member sees one increasing sequence. */
  seq: number;
}

/** One round against one server: publish for ROUND_MS with WINDOW in flight, then wait for what is in flight. */
async function round(t: Target, members: ChildProcess[]): Promise<Round> {
  const cpu0 = await cpuMs(t.server);
  const acks = new Map<number, number>();
  const first = t.seq;
  let completed = 0;
  let lastDone = 0;
  const t0 = performance.now();
  const stopAt = t0 + ROUND_MS;
  let onGot!: (m: { type: string; group?: number; seq?: number }) => void;
  const finished = new Promise<void>((resolve) => {
    onGot = (m) => {
      if (m.type !== 'got' || m.group !== t.group) return;
      const n = (acks.get(m.seq!) ?? 0) + 1;
      if (n < PROCESSES) return void acks.set(m.seq!, n);
      acks.delete(m.seq!);
      completed++;
      lastDone = performance.now();
      if (lastDone < stopAt) t.publisher.publish(t.seq++);
      else if (completed === t.seq - first) resolve();
    };
    for (const m of members) m.on('message', onGot);
  });
  for (let i = 0; i < WINDOW; i++) t.publisher.publish(t.seq++);
  // What is in flight at the deadline must land within a bound, or it counts as lost.
  let bound: NodeJS.Timeout | undefined;
  await Promise.race([finished, new Promise((r) => (bound = setTimeout(r, ROUND_MS + 30_000)))]);
  clearTimeout(bound);
  for (const m of members) m.off('message', onGot);
  const cpu1 = await cpuMs(t.server);
  const sent = t.seq - first;
  const deliveries = completed * MEMBERS;
  return {
    deliveriesPerSec: deliveries / (((lastDone || performance.now()) - t0) / 1000),
    cpuUsPerDelivery: ((cpu1 - cpu0) * 1000) / Math.max(1, deliveries),
    broadcasts: completed,
    lost: (sent - completed) * MEMBERS,
  };
}

const dir = tempDir('c1');
const servers: ChildProcess[] = [];
const publishers: Publisher[] = [];
const members = Array.from({ length: PROCESSES }, () => forkTs(path.join(HERE, 'servers/fanout-members.ts'), [], { fds: 65_536 }));
try {
  const plugin = dir.write('plugin.ts', ROOM_PLUGIN);
  const started = await Promise.all([
    startServer(path.join(HERE, 'servers/hotline-server.ts'), [JSON.stringify({ plugin })]),
    startServer(path.join(HERE, 'servers/fanout-socketio.ts'), []),
    startServer(path.join(HERE, 'servers/fanout-raw.ts'), []),
  ]);
  servers.push(...started.map((s) => s.child));
  const targets: Target[] = [];
  for (const [group, kind] of KINDS.entries()) {
    const { child, url } = started[group]!;
    const connected = members.map((m) => nextMessage(m, (x): x is { type: 'connected' } => ofType<{ type: 'connected'; group: number }>('connected')(x) && x.group === group, 180_000, `${kind} members`));
    for (const [i, m] of members.entries()) {
      const localAddresses = LOCAL_ADDRESSES.slice(i * 2, i * 2 + 2);
      m.send({ type: 'connect', group, url, connections: MEMBERS / PROCESSES, mode: kind === 'socket.io' ? 'sio' : 'ws', localAddresses });
    }
    await Promise.all(connected);
    const publisher = new Publisher(url, kind === 'socket.io');
    publishers.push(publisher);
    // Every member is in the room before the first publish (joins may trail the handshakes by a turn).
    const deadline = Date.now() + 30_000;
    for (let n = await publisher.hello(); n !== MEMBERS; n = await publisher.hello()) {
      if (Date.now() > deadline) throw new Error(`${kind}: the room has ${n} members, not ${MEMBERS}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    targets.push({ kind, group, server: child, publisher, seq: 0 });
  }

  const rounds = new Map<Kind, Round[]>(KINDS.map((k) => [k, []]));
  for (let i = 0; i < ROUNDS; i++) {
    for (const t of targets) {
      const r = await round(t, members);
      rounds.get(t.kind)!.push(r);
      console.log(`round ${i + 1} ${t.kind}: ${Math.round(r.deliveriesPerSec).toLocaleString('en-US')} deliveries/s, ${r.cpuUsPerDelivery.toFixed(2)} µs server CPU/delivery, ${r.broadcasts} broadcasts, lost ${r.lost}`);
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
    results.set(t.kind, {
      kind: t.kind,
      deliveriesPerSec: median(rs.map((r) => r.deliveriesPerSec)),
      cpuUsPerDelivery: median(rs.map((r) => r.cpuUsPerDelivery)),
      p50Ms: h.quantileUs(0.5) / 1000,
      p99Ms: h.quantileUs(0.99) / 1000,
      broadcasts: rs.reduce((a, r) => a + r.broadcasts, 0),
      // Every message published to this room, to every member, against what the members counted.
      lost: t.seq * MEMBERS - delivered,
      bad,
    });
  }
  const hot = results.get('hotline')!;
  const sio = results.get('socket.io')!;
  const raw = results.get('raw ws')!;
  for (const r of [hot, sio, raw]) console.log(`${r.kind}: p50 ${ms(r.p50Ms)}, p99 ${ms(r.p99Ms)}, lost ${r.lost}, bad ${r.bad}`);
  const rate = (r: Result) => `${Math.round(r.deliveriesPerSec).toLocaleString('en-US')}/s`;
  const cpu = (r: Result) => `${r.cpuUsPerDelivery.toFixed(2)} µs`;
  finish(args, {
    id: 'C1',
    title: 'room fan-out on one node',
    quick: args.quick,
    rows: [
      {
        figure: `C1 deliveries/s, one room of ${MEMBERS.toLocaleString('en-US')}, vs socket.io 4 (median of ${ROUNDS})`,
        hotline: rate(hot),
        baseline: `socket.io io.to(room).emit: ${rate(sio)}`,
        ratio: ratio(hot.deliveriesPerSec, sio.deliveriesPerSec),
        target: '≥ 1.5× socket.io',
        met: hot.deliveriesPerSec >= 1.5 * sio.deliveriesPerSec,
      },
      {
        figure: 'C1 deliveries/s vs a raw ws loop',
        hotline: rate(hot),
        baseline: `raw ws.send loop: ${rate(raw)}`,
        ratio: ratio(hot.deliveriesPerSec, raw.deliveriesPerSec),
        target: '≥ 0.9× raw',
        met: hot.deliveriesPerSec >= 0.9 * raw.deliveriesPerSec,
      },
      {
        figure: 'C1 delivery p99 (publish to member)',
        hotline: ms(hot.p99Ms),
        baseline: `socket.io ${ms(sio.p99Ms)}, raw ${ms(raw.p99Ms)}`,
        ratio: ratio(hot.p99Ms, sio.p99Ms),
        target: '',
      },
      {
        figure: 'C1 server CPU per delivery (median round)',
        hotline: cpu(hot),
        baseline: `socket.io ${cpu(sio)}, raw ${cpu(raw)}`,
        ratio: `${ratio(sio.cpuUsPerDelivery, hot.cpuUsPerDelivery)} less than socket.io, ${ratio(raw.cpuUsPerDelivery, hot.cpuUsPerDelivery)} less than raw`,
        target: '',
      },
    ],
    zeroLoss: [{ name: 'C1 hotline deliveries lost', count: hot.lost + hot.bad }],
    notes: [
      `${MEMBERS} members per server in ${PROCESSES} client processes (all three rooms connected at once), one publisher each, ${WINDOW} broadcasts in flight, ${PAD.length + 20}-byte text messages, ${ROUNDS} alternating round(s) of ${ROUND_MS / 1000} s per server; servers and members share the same 2 cores, so deliveries/s also carries the members' own cost: the CPU row is the server's alone.`,
      `broadcasts: hotline ${hot.broadcasts}, socket.io ${sio.broadcasts}, raw ${raw.broadcasts}; lost: socket.io ${sio.lost}, raw ${raw.lost}.`,
    ],
  });
} finally {
  for (const p of publishers) p.close();
  for (const m of members) if (m.connected) m.send({ type: 'close' });
  await Promise.all([...members, ...servers].map((c) => stopChild(c)));
  dir.remove();
}
