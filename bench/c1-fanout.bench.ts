/**
 * C1 fan-out on one node (issue 13): one room of 10,000 members (1,000 with --quick), one publisher, broadcasts kept
 * `WINDOW` in flight (the next one goes when every member has one `WINDOW` back). Measured for hotline's
 * `ctx.to(room).send(data)`, socket.io 4's `io.to(room).emit`, and a raw `ws` loop (`ws.send` to every socket), each
 * server in its own process and the members in two client processes that speak each server's wire protocol with
 * the same `ws` client code (bench/servers/fanout-members.ts). Reported: deliveries per second, the p99 from publish
 * to delivery, and the server's CPU time per delivery (process.cpuUsage of the server process over the run).
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
import { Histogram, type HistogramJson, ms, ratio } from './lib/stats.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const args = benchArgs();
const MEMBERS = args.quick ? 1000 : 10_000;
const PROCESSES = 2;
const DURATION_MS = args.quick ? 1500 : 6000;
const WINDOW = 2;
const PAD = 'x'.repeat(64);
/** Source addresses for the members, so three servers' worth of connections never run short of ephemeral ports. */
const LOCAL_ADDRESSES = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];

type Kind = 'hotline' | 'socket.io' | 'raw ws';
interface Result {
  kind: Kind;
  deliveriesPerSec: number;
  p50Ms: number;
  p99Ms: number;
  cpuUsPerDelivery: number;
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

async function measure(kind: Kind, server: { child: ChildProcess; url: string }): Promise<Result> {
  const members = Array.from({ length: PROCESSES }, () => forkTs(path.join(HERE, 'servers/fanout-members.ts'), [], { fds: 65_536 }));
  const publisher = new Publisher(server.url, kind === 'socket.io');
  try {
    const connected = members.map((m) => nextMessage(m, ofType<{ type: 'connected' }>('connected'), 120_000, `${kind} members`));
    const per = MEMBERS / PROCESSES;
    for (const [i, m] of members.entries()) {
      const localAddresses = LOCAL_ADDRESSES.slice(i * 2, i * 2 + 2);
      m.send({ type: 'connect', url: server.url, connections: per, mode: kind === 'socket.io' ? 'sio' : 'ws', localAddresses });
    }
    await Promise.all(connected);
    // Every member is in the room before the first publish (joins may trail the handshakes by a turn).
    const deadline = Date.now() + 30_000;
    for (let n = await publisher.hello(); n !== MEMBERS; n = await publisher.hello()) {
      if (Date.now() > deadline) throw new Error(`${kind}: the room has ${n} members, not ${MEMBERS}`);
      await new Promise((r) => setTimeout(r, 50));
    }

    const cpu0 = await cpuMs(server.child);
    const acks = new Map<number, number>();
    let sent = 0;
    let completed = 0;
    let stopAt = 0;
    let lastDone = 0;
    const t0 = performance.now();
    stopAt = t0 + DURATION_MS;
    const finished = new Promise<void>((resolve) => {
      const onGot = (m: { type: string; seq?: number }) => {
        if (m.type !== 'got') return;
        const n = (acks.get(m.seq!) ?? 0) + 1;
        if (n < PROCESSES) return void acks.set(m.seq!, n);
        acks.delete(m.seq!);
        completed++;
        lastDone = performance.now();
        if (lastDone < stopAt) publisher.publish(sent++);
        else if (completed === sent) resolve();
      };
      for (const m of members) m.on('message', onGot);
    });
    for (let i = 0; i < WINDOW; i++) publisher.publish(sent++);
    // What is in flight at the deadline must land within a bound, or it counts as lost.
    let bound: NodeJS.Timeout | undefined;
    await Promise.race([finished, new Promise((r) => (bound = setTimeout(r, DURATION_MS + 30_000)))]);
    clearTimeout(bound);
    const cpu1 = await cpuMs(server.child);

    const reports = await Promise.all(
      members.map((m) => {
        const r = nextMessage(m, ofType<{ type: 'report'; histogram: HistogramJson; deliveries: number; bad: number }>('report'), 30_000, 'report');
        m.send({ type: 'report' });
        return r;
      }),
    );
    const h = new Histogram();
    let deliveries = 0;
    let bad = 0;
    for (const r of reports) {
      h.merge(r.histogram);
      deliveries += r.deliveries;
      bad += r.bad;
    }
    const seconds = ((lastDone || performance.now()) - t0) / 1000;
    return {
      kind,
      deliveriesPerSec: deliveries / seconds,
      p50Ms: h.quantileUs(0.5) / 1000,
      p99Ms: h.quantileUs(0.99) / 1000,
      cpuUsPerDelivery: ((cpu1 - cpu0) * 1000) / Math.max(1, deliveries),
      broadcasts: completed,
      lost: sent * MEMBERS - deliveries,
      bad,
    };
  } finally {
    publisher.close();
    for (const m of members) if (m.connected) m.send({ type: 'close' });
    await Promise.all(members.map((m) => stopChild(m)));
  }
}

const dir = tempDir('c1');
const servers: ChildProcess[] = [];
try {
  const plugin = dir.write('plugin.ts', ROOM_PLUGIN);
  const starts: Array<[Kind, () => Promise<{ child: ChildProcess; url: string }>]> = [
    ['hotline', () => startServer(path.join(HERE, 'servers/hotline-server.ts'), [JSON.stringify({ plugin })])],
    ['socket.io', () => startServer(path.join(HERE, 'servers/fanout-socketio.ts'), [])],
    ['raw ws', () => startServer(path.join(HERE, 'servers/fanout-raw.ts'), [])],
  ];
  const results = new Map<Kind, Result>();
  // One server at a time: each gets both cores' worth of room with its members.
  for (const [kind, start] of starts) {
    const server = await start();
    servers.push(server.child);
    const r = await measure(kind, server);
    results.set(kind, r);
    console.log(
      `${kind}: ${Math.round(r.deliveriesPerSec).toLocaleString('en-US')} deliveries/s, p50 ${ms(r.p50Ms)}, p99 ${ms(r.p99Ms)}, ` +
        `${r.cpuUsPerDelivery.toFixed(2)} µs server CPU/delivery, ${r.broadcasts} broadcasts, lost ${r.lost}, bad ${r.bad}`,
    );
    await stopChild(server.child);
  }
  const hot = results.get('hotline')!;
  const sio = results.get('socket.io')!;
  const raw = results.get('raw ws')!;
  const rate = (r: Result) => `${Math.round(r.deliveriesPerSec).toLocaleString('en-US')}/s`;
  const cpu = (r: Result) => `${r.cpuUsPerDelivery.toFixed(2)} µs`;
  finish(args, {
    id: 'C1',
    title: 'room fan-out on one node',
    quick: args.quick,
    rows: [
      {
        figure: `C1 deliveries/s, one room of ${MEMBERS.toLocaleString('en-US')}, vs socket.io 4`,
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
        figure: 'C1 server CPU per delivery',
        hotline: cpu(hot),
        baseline: `socket.io ${cpu(sio)}, raw ${cpu(raw)}`,
        ratio: `${ratio(sio.cpuUsPerDelivery, hot.cpuUsPerDelivery)} less than socket.io, ${ratio(raw.cpuUsPerDelivery, hot.cpuUsPerDelivery)} less than raw`,
        target: '',
      },
    ],
    zeroLoss: [{ name: 'C1 hotline deliveries lost', count: hot.lost + hot.bad }],
    notes: [
      `${MEMBERS} members in ${PROCESSES} client processes and one publisher, ${WINDOW} broadcasts in flight, ${PAD.length + 20}-byte text messages, ${DURATION_MS / 1000} s per server; servers and clients share the same 2 cores, so deliveries/s is bounded by the members' own parsing as much as by the server: the CPU row is the server's cost alone.`,
      `broadcasts: hotline ${hot.broadcasts}, socket.io ${sio.broadcasts}, raw ${raw.broadcasts}; lost: socket.io ${sio.lost}, raw ${raw.lost}.`,
    ],
  });
} finally {
  await Promise.all(servers.map((c) => stopChild(c)));
  dir.remove();
}
