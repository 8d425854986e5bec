/**
 * H2, a hang in inline mode (issue 11): `hotline start --sessions` (so the global state is checkpointed too), N
 * session clients streaming both ways, then a plain client sends `hang` and the plugin's onMessage spins forever.
 * Nothing can preempt it in inline mode: the supervisor's watchdog sees the heartbeat stop, kills the worker and
 * restarts it from the last checkpoint. Measured: hang → worker killed (detection), hang → every session client
 * resumed, messages lost, duplicated or reordered both ways (target 0), and how much of the global state the
 * restart kept (what changed after the last checkpoint is lost).
 *
 * Baseline in the same run, same supervisor and clients: a kill -9 of the worker (a crash: the restart without the
 * detection). The hanging message comes from a plain, non-session client, so no replay re-sends it: H2 measures the
 * restart, not poison-message handling.
 *
 *   node --import tsx bench/h2-inline-hang.bench.ts [--quick] [--report FILE]   (needs `npm run build`; from the repository root)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { adminRequest } from '../src/admin/admin-client.js';
import { connect, type HotlineClient } from '../src/client/index.js';
import { tempDir } from './lib/plugins.js';
import { stopChild } from './lib/processes.js';
import { benchArgs, finish, type ZeroLossCount } from './lib/report.js';
import { ms, quantile, ratio } from './lib/stats.js';

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const args = benchArgs();
const N = args.quick ? 20 : 200;
const WATCHDOG_MS = args.quick ? 1_000 : 2_000;
/** Checkpoint interval: shorter than the 5 s default, so a run of a few seconds shows what a checkpoint keeps. */
const STATE_INTERVAL_MS = 500;
const TICK_MS = 100;
const SEND_MS = 200;
const WAIT_MS = 60_000;

/**
 * Per connection: a tick `t<k>` every TICK_MS, and `r<n>:<handled>:<boot>` for each client message `n`, where
 * `handled` counts client messages in the global state (checkpointed) and `boot` names the worker process.
 */
const PLUGIN = `
import { definePlugin } from 'hotline';
const BOOT = Math.random().toString(36).slice(2, 8);
export default definePlugin<{ handled: number }, { got: number; tick: number }>({
  name: 'h2-stream', version: '1.0.0', api: 1,
  init(ctx) {
    ctx.setInterval(() => {
      for (const c of ctx.connections) {
        if (!c.state) continue;
        c.state.tick++;
        c.send('t' + c.state.tick);
      }
    }, ${TICK_MS});
    return { handled: 0 };
  },
  migrate: (prev) => ({ handled: (prev.state as { handled?: number }).handled ?? 0 }),
  onOpen(conn) { conn.state = { got: 0, tick: 0 }; },
  onMessage(conn, data, ctx) {
    if (data === 'hang') { conn.send('spinning'); while (true) {} }
    const n = Number(String(data));
    if (n !== conn.state.got + 1) conn.send('x' + n);
    conn.state.got = n;
    ctx.state.handled++;
    conn.send('r' + n + ':' + ctx.state.handled + ':' + BOOT);
  },
});
`;

async function waitFor(cond: () => boolean, what: string, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`H2: timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Numbers as one client sees them: duplicates, steps back, gaps. */
class Sequence {
  readonly seen = new Set<number>();
  max = 0;
  duplicated = 0;
  reordered = 0;
  add(n: number): void {
    if (this.seen.has(n)) return void this.duplicated++;
    if (n < this.max) this.reordered++;
    this.seen.add(n);
    this.max = Math.max(this.max, n);
  }
  get gaps(): number {
    return this.max - this.seen.size;
  }
}

/** Worker boots in the order their first reply arrived: the first worker, the one after the crash, the one after the hang. */
const bootOrder: string[] = [];

class Stream {
  readonly ticks = new Sequence();
  readonly replies = new Sequence();
  sent = 0;
  serverErrors = 0;
  resumes: number[] = [];
  lostSessions = 0;
  /** The highest global count seen per worker boot. */
  readonly handledByBoot = new Map<string, { min: number; max: number }>();

  receive(s: string): void {
    if (s[0] === 't') return this.ticks.add(Number(s.slice(1)));
    if (s[0] === 'x') return void this.serverErrors++;
    const [n, handled, boot] = s.slice(1).split(':');
    this.replies.add(Number(n));
    const h = Number(handled);
    const b = this.handledByBoot.get(boot!);
    if (!bootOrder.includes(boot!)) bootOrder.push(boot!);
    if (!b) this.handledByBoot.set(boot!, { min: h, max: h });
    else {
      b.min = Math.min(b.min, h);
      b.max = Math.max(b.max, h);
    }
  }
}

interface Status {
  supervisor: { workerPid: number; restarts: number; watchdog: { hangs: number } };
  checkpoint?: { restore?: { version?: string; writtenAt?: number; code?: string } };
}

const dir = tempDir('h2');
const entry = dir.write('plugin.ts', PLUGIN);
const admin = path.join(dir.dir, 'admin.sock');
let sup: ChildProcess | undefined;
const clients: HotlineClient[] = [];
let pump: ReturnType<typeof setInterval> | undefined;

/** ms from `t0` until every client has resumed `k` times. */
async function allResumed(streams: Stream[], k: number, t0: number): Promise<number[]> {
  await waitFor(() => streams.every((s) => s.resumes.length >= k || s.lostSessions > 0), `every client resumed (${k})`);
  return streams.map((s) => (s.resumes[k - 1] ?? Number.NaN) - t0);
}

/** Until every client got `n` more replies. */
async function flowing(streams: Stream[], what: string, n = 2): Promise<void> {
  const marks = streams.map((s) => s.replies.max);
  await waitFor(() => streams.every((s, i) => s.replies.max >= marks[i]! + n), what);
}

/** Replies per client before each fault: two checkpoint intervals of traffic, so a checkpoint of it exists. */
const BEFORE_FAULT = Math.ceil((2 * STATE_INTERVAL_MS) / SEND_MS);

try {
  sup = spawn(process.execPath, [path.join(ROOT, 'bin/hotline.js'), 'start', entry, '--port', '0', '--admin', admin, '--sessions', '--watchdog-timeout', String(WATCHDOG_MS), '--state-interval', String(STATE_INTERVAL_MS)], {
    cwd: dir.dir,
    stdio: ['ignore', 'pipe', process.env.BENCH_STDERR ? 'inherit' : 'ignore'],
  });
  const ready = await new Promise<string>((resolve) => createInterface({ input: sup!.stdout! }).once('line', resolve));
  const url = /on (ws:\/\/\S+)/.exec(ready)![1]!;

  const streams: Stream[] = [];
  for (let i = 0; i < N; i++) {
    const c = connect(url);
    const s = new Stream();
    c.on('message', (d) => s.receive(String(d)));
    c.on('resumed', () => s.resumes.push(performance.now()));
    c.on('lost-session', () => s.lostSessions++);
    clients.push(c);
    streams.push(s);
  }
  await waitFor(() => clients.every((c) => c.state === 'open'), `${N} session clients open`);
  pump = setInterval(() => {
    clients.forEach((c, i) => {
      if (c.state !== 'closed' && c.queued < 500) c.send(String(++streams[i]!.sent));
    });
  }, SEND_MS);
  await flowing(streams, 'streams flowing', BEFORE_FAULT);

  // Baseline: a crash (kill -9 of the worker), the restart alone.
  const before = (await adminRequest(admin, 'status')) as Status;
  const k0 = performance.now();
  process.kill(before.supervisor.workerPid, 'SIGKILL');
  const crashResume = await allResumed(streams, 1, k0);
  await flowing(streams, 'streams flowing after the crash', BEFORE_FAULT);

  // H2: a busy loop in a handler, sent by a plain client.
  const plain = new WebSocket(url);
  plain.on('error', () => undefined);
  await new Promise((resolve) => plain.once('open', resolve));
  const spinning = new Promise<void>((resolve) => plain.on('message', (d) => String(d) === 'spinning' && resolve()));
  const killed = new Promise<number>((resolve) => plain.once('close', () => resolve(performance.now())));
  plain.send('hang');
  await spinning;
  const h0 = performance.now();
  const hangResume = await allResumed(streams, 2, h0);
  const detectMs = (await killed) - h0;
  await flowing(streams, 'streams flowing after the hang');

  clearInterval(pump);
  pump = undefined;
  await waitFor(() => streams.every((s) => s.replies.seen.size >= s.sent), 'every reply', 20_000).catch(() => undefined);
  const after = (await adminRequest(admin, 'status')) as Status;

  // What a worker had counted when it died (its highest count seen), and what the next one restored (its first count
  // minus one): the difference changed after the last checkpoint.
  const counted = (boot: string | undefined) => Math.max(...streams.map((s) => s.handledByBoot.get(boot!)?.max ?? 0));
  const restoredBy = (boot: string | undefined) => Math.min(...streams.map((s) => s.handledByBoot.get(boot!)?.min ?? Infinity)) - 1;
  const [b1, b2, b3] = bootOrder;
  const crashKept = { before: counted(b1), restored: restoredBy(b2) };
  const hangKept = { before: counted(b2), restored: restoredBy(b3) };
  const sum = (f: (s: Stream) => number) => streams.reduce((a, s) => a + f(s), 0);
  const lost = sum((s) => s.ticks.gaps + (s.sent - s.replies.seen.size));
  const duplicated = sum((s) => s.ticks.duplicated + s.replies.duplicated);
  const reordered = sum((s) => s.ticks.reordered + s.replies.reordered);
  const serverErrors = sum((s) => s.serverErrors);
  const lostSessions = sum((s) => s.lostSessions);
  const sent = sum((s) => s.sent);
  const p = (v: number[], q: number) => ms(quantile(v, q));
  const restoreInfo = after.checkpoint?.restore;
  const zeroLoss: ZeroLossCount[] = [
    { name: 'H2 hang lost', count: lost },
    { name: 'H2 hang duplicated', count: duplicated },
    { name: 'H2 hang reordered', count: reordered },
    { name: 'H2 hang host-side sequence errors', count: serverErrors },
    { name: 'H2 hang lost sessions', count: lostSessions },
  ];
  finish(args, {
    id: 'H2',
    title: 'a hang in inline mode',
    quick: args.quick,
    rows: [
      {
        figure: `H2 hang → session clients resumed (${N} clients, watchdogTimeout ${WATCHDOG_MS} ms), first / p50 / p99 / every one`,
        hotline: `${ms(Math.min(...hangResume))} / ${p(hangResume, 0.5)} / ${p(hangResume, 0.99)} / ${ms(Math.max(...hangResume))} (worker killed after ${ms(detectMs)})`,
        baseline: `kill -9 of the worker: ${ms(Math.min(...crashResume))} / ${p(crashResume, 0.5)} / ${p(crashResume, 0.99)} / ${ms(Math.max(...crashResume))}`,
        ratio: ratio(Math.max(...hangResume), Math.max(...crashResume)),
        target: `≈ watchdogTimeout + restart`,
      },
      {
        figure: `H2 messages through the hang and the crash (${sent} client messages, ticks both ways)`,
        hotline: `lost ${lost}, duplicated ${duplicated}, reordered ${reordered}, lost sessions ${lostSessions}, host-side order errors ${serverErrors}`,
        baseline: 'n/a',
        ratio: '',
        target: 'lost 0',
        met: lost + duplicated + reordered + lostSessions + serverErrors === 0,
      },
      {
        figure: 'H2 global state after the hang (client messages counted in the checkpointed state)',
        hotline: `restored ${hangKept.restored} of ${hangKept.before} counted before the hang (${hangKept.before - hangKept.restored} changes after the last checkpoint lost)`,
        baseline: `kill -9: restored ${crashKept.restored} of ${crashKept.before}; without checkpoints: 0`,
        ratio: '',
        target: '',
      },
    ],
    zeroLoss,
    notes: [
      `each client: a tick every ${TICK_MS} ms from the host and a message every ${SEND_MS} ms to it; hotline's client backs off 250 ms doubling with full jitter. The supervisor keeps the listening socket, so reconnects wait in its backlog for the new worker.`,
      `the hanging message comes from a plain WebSocket client (not a session), so nothing replays it; "worker killed" is when its socket closed.`,
      `the global state is checkpointed every ${STATE_INTERVAL_MS} ms here (--state-interval; default 5 000) when it changed, and at swaps: a hang or crash loses what changed since the last one (up to one interval, plus the hang itself)${restoreInfo?.writtenAt ? '' : ' (no checkpoint restored: ' + JSON.stringify(restoreInfo) + ')'}. The messages themselves are not lost: each is in the session store before it is sent, and acknowledged client messages are not replayed, so their effect on the global state after the last checkpoint is what goes.`,
      `status after: ${after.supervisor.restarts} restarts, ${after.supervisor.watchdog.hangs} hang(s) killed by the watchdog.`,
    ],
  });
} finally {
  if (pump) clearInterval(pump);
  for (const c of clients) c.close();
  if (sup) await stopChild(sup, 5_000);
  dir.remove();
}
