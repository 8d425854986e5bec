/**
 * R1 resume after restart: 1,000 session clients (200 with --quick) stream both ways with a hotline host in its own
 * process (sessions on, file store): the host ticks `t<k>@<gen>` to every connection, each client sends `1, 2, 3…` and
 * gets `r<n>@<gen>`. Mid-stream the host is killed (-9), or stopped gracefully (SIGTERM: reconnect hint, drain), and
 * a new host starts on the same port and store. Per client, by sequence numbers: the time from the kill to `resumed`,
 * messages replayed (received after `resumed` but sent by the old host), lost, duplicated, reordered.
 *
 * Baseline in the same run: the same streams and clients over plain `ws` (no sessions, same backoff) through the same
 * kill -9: how long they take to reconnect and what they lose. A second row compares the store's write before each
 * send, file store vs memory store.
 *
 *   node --import tsx bench/resume.bench.ts [--quick]
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { backoffDelay, DEFAULT_BACKOFF } from '../src/client/backoff.js';
import { connect, type HotlineClient } from '../src/client/index.js';
import { FileSessionStore, MemorySessionStore } from '../src/index.js';
import type { SessionStore } from '../src/session/store.js';
import { tempDir, type TempDir } from './lib/plugins.js';
import { forkTs, nextMessage, ofType, stopChild } from './lib/processes.js';
import { benchArgs, finish, type BenchRow, type ZeroLossCount } from './lib/report.js';
import { ms, quantile, ratio } from './lib/stats.js';
import type { SessionServerConfig } from './servers/session-server.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SERVER = path.join(HERE, 'servers/session-server.ts');
const args = benchArgs();
const N = args.quick ? 200 : 1000;
// Per connection: a tick every TICK_MS from the host, a message every SEND_MS from the client (1,000 clients: 5,000
// ticks/s plus 2,500 messages/s and their replies, each written to the store before it is sent).
const TICK_MS = args.quick ? 100 : 200;
const SEND_MS = TICK_MS * 2;
const WAIT_MS = 60_000;

/** The stream plugin; `gen` tells which host process sent a message, so replays of the dead host are recognised. */
function streamPlugin(gen: number): string {
  return `
import { definePlugin } from 'hotline';
export default definePlugin<{}, { got: number; tick: number }>({
  name: 'resume-stream', version: '1.0.${gen}', api: 1,
  init(ctx) {
    ctx.setInterval(() => {
      for (const c of ctx.connections) {
        if (!c.state) continue;
        c.state.tick++;
        c.send('t' + c.state.tick + '@${gen}');
      }
    }, ${TICK_MS});
    return {};
  },
  migrate: () => ({}),
  onOpen(conn) { conn.state = { got: 0, tick: 0 }; },
  onMessage(conn, data) {
    const n = Number(String(data));
    // The host's own order check of the client->server stream: 'x' marks a gap, a repeat or a step back.
    if (n !== conn.state.got + 1) conn.send('x' + n + '@${gen}');
    conn.state.got = n;
    conn.send('r' + n + '@${gen}');
  },
});
`;
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`R1: timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A numbered stream as one client sees it: duplicates, steps back and gaps, counted from the numbers alone. */
class Sequence {
  readonly seen = new Set<number>();
  max = 0;
  duplicated = 0;
  reordered = 0;

  add(n: number): void {
    if (this.seen.has(n)) {
      this.duplicated++;
      return;
    }
    if (n < this.max) this.reordered++;
    this.seen.add(n);
    if (n > this.max) this.max = n;
  }

  /** Numbers below the highest one that never arrived. */
  get gaps(): number {
    return this.max - this.seen.size;
  }
}

/** What one client received, parsed from `t<k>@<gen>`, `r<n>@<gen>`, `x<n>@<gen>`. */
class StreamCheck {
  readonly ticks = new Sequence();
  readonly replies = new Sequence();
  sent = 0;
  /** The host saw the client->server stream out of order. */
  serverErrors = 0;
  /** Generation of the last message: the restart is over for this client once a new host's tick arrived. */
  lastGen = 0;
  /** Messages of an earlier host received after `resumed`: what the session replayed. */
  replayed = 0;
  /** `sent` when the host was stopped: replies to these from a new host are client messages the old one never handled. */
  sentBeforeStop = Number.POSITIVE_INFINITY;
  /** Client messages sent before the stop and answered by a new host: replayed client->server. */
  handledByNew = 0;
  resumedAt: number | undefined;
  /** The first tick number received from a new host (1 = the stream started over: state lost). */
  firstNewTick: number | undefined;

  constructor(readonly gen: () => number) {}

  receive(s: string): void {
    const at = s.indexOf('@');
    const n = Number(s.slice(1, at));
    const gen = Number(s.slice(at + 1));
    if (this.resumedAt !== undefined && gen < this.gen()) this.replayed++;
    if (s[0] === 't') {
      if (gen === this.gen() && this.firstNewTick === undefined && this.gen() > 1) this.firstNewTick = n;
      this.ticks.add(n);
    } else if (s[0] === 'r') {
      if (gen === this.gen() && gen > 1 && n <= this.sentBeforeStop && !this.replies.seen.has(n)) this.handledByNew++;
      this.replies.add(n);
    } else this.serverErrors++;
    this.lastGen = gen;
  }
}

interface StartedHost {
  child: ChildProcess;
  port: number;
}

async function startHost(config: SessionServerConfig): Promise<StartedHost> {
  const child = forkTs(SERVER, [JSON.stringify(config)], { fds: 65_536 });
  const { port } = await nextMessage(child, ofType<{ type: 'ready'; port: number }>('ready'), WAIT_MS, 'session server');
  return { child, port };
}

/** The restarted host takes the same port; if another process took it meanwhile, any port (clients read it per attempt). */
async function restartHost(config: SessionServerConfig): Promise<StartedHost & { samePort: boolean }> {
  try {
    return { ...(await startHost(config)), samePort: true };
  } catch {
    return { ...(await startHost({ ...config, port: 0 })), samePort: false };
  }
}

/** kill: SIGKILL mid-stream. hang: the host freezes (SIGSTOP) and a watchdog kills it. term: graceful stop. */
type RestartKind = 'kill' | 'hang' | 'term';

const LABELS: Record<RestartKind, string> = { kill: 'kill -9', hang: 'a hung host killed -9', term: 'graceful restart' };

async function stopForRestart(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  const exited = once(child, 'exit');
  child.kill(signal);
  await exited;
}

interface RestartResult {
  /** ms from the kill (or SIGTERM) to each client's `resumed` (or reconnect, for the baseline). */
  resume: number[];
  /** ms from the kill to the new host listening. */
  hostBack: number;
  /** ms from the new host listening to each client's `resumed`. */
  afterListen: number[];
  sent: number;
  replayed: number;
  /** Client messages sent before the stop that only the new host handled. */
  replayedToHost: number;
  resent: number;
  lost: number;
  duplicated: number;
  reordered: number;
  serverErrors: number;
  lostSessions: number;
  samePort: boolean;
}

/** hotline: session clients through one restart of a host with the file store. */
async function sessionRestart(kind: RestartKind): Promise<RestartResult> {
  const dir = tempDir('r1-session');
  const store = path.join(dir.dir, 'sessions');
  let gen = 1;
  const plugin = dir.write('plugin.ts', streamPlugin(gen));
  let host = await startHost({ plugin, port: 0, store });
  let port = host.port;
  const clients: HotlineClient[] = [];
  const checks: StreamCheck[] = [];
  let resent = 0;
  let lostSessions = 0;
  let pump: ReturnType<typeof setInterval> | undefined;
  try {
    for (let i = 0; i < N; i++) {
      const c = connect(() => `ws://127.0.0.1:${port}/`);
      const check = new StreamCheck(() => gen);
      c.on('message', (d) => check.receive(String(d)));
      c.on('resumed', (info) => {
        check.resumedAt ??= performance.now();
        resent += info.resent;
      });
      c.on('lost-session', () => lostSessions++);
      clients.push(c);
      checks.push(check);
    }
    await waitFor(() => clients.every((c) => c.state === 'open'), `${N} session clients open`);
    // Client->server stream: queued by the client while the host is down, resent on resume.
    pump = setInterval(() => {
      clients.forEach((c, i) => {
        if (c.state !== 'closed' && c.queued < 500) {
          c.send(String(++checks[i]!.sent));
        }
      });
    }, SEND_MS);
    await waitFor(() => checks.every((ch) => ch.ticks.max >= 3 && ch.replies.max >= 2), 'streams flowing before the restart');

    gen = 2;
    dir.write('plugin.ts', streamPlugin(gen));
    if (kind === 'hang') {
      // A frozen host reads nothing: what the clients send now waits in its socket buffers and dies with it.
      const before = checks.map((ch) => ch.sent);
      host.child.kill('SIGSTOP');
      await waitFor(() => checks.every((ch, i) => ch.sent > before[i]!), 'client messages sent to the frozen host');
    }
    for (const ch of checks) ch.sentBeforeStop = ch.sent;
    const t0 = performance.now();
    await stopForRestart(host.child, kind === 'term' ? 'SIGTERM' : 'SIGKILL');
    const restarted = await restartHost({ plugin, port, store });
    const listening = performance.now();
    host = restarted;
    port = restarted.port;
    await waitFor(() => checks.every((ch) => ch.resumedAt !== undefined) || lostSessions > 0, 'every client resumed');
    // Until a new host's tick has arrived, a gap in the old host's ticks could still be a replay on its way.
    await waitFor(() => checks.every((ch) => ch.lastGen === gen && ch.firstNewTick !== undefined), 'new ticks after resume');
    clearInterval(pump);
    pump = undefined;
    await waitFor(() => checks.every((ch) => ch.replies.seen.size >= ch.sent), 'every reply', 20_000).catch(() => undefined);
    return {
      resume: checks.map((ch) => (ch.resumedAt ?? Number.NaN) - t0),
      hostBack: listening - t0,
      // The ready message can trail the first accepts by a little: clamp at 0.
      afterListen: checks.map((ch) => Math.max(0, (ch.resumedAt ?? Number.NaN) - listening)),
      sent: checks.reduce((a, ch) => a + ch.sent, 0),
      replayed: checks.reduce((a, ch) => a + ch.replayed, 0),
      replayedToHost: checks.reduce((a, ch) => a + ch.handledByNew, 0),
      resent,
      lost: checks.reduce((a, ch) => a + ch.ticks.gaps + (ch.sent - ch.replies.seen.size), 0),
      duplicated: checks.reduce((a, ch) => a + ch.ticks.duplicated + ch.replies.duplicated, 0),
      reordered: checks.reduce((a, ch) => a + ch.ticks.reordered + ch.replies.reordered, 0),
      serverErrors: checks.reduce((a, ch) => a + ch.serverErrors, 0),
      lostSessions,
      samePort: restarted.samePort,
    };
  } finally {
    if (pump) clearInterval(pump);
    for (const c of clients) c.close();
    await stopChild(host.child);
    dir.remove();
  }
}

/** A plain `ws` client that reconnects with the same backoff as hotline's client, and nothing else. */
class PlainClient {
  readonly check: StreamCheck;
  ws: WebSocket | undefined;
  attempt = 0;
  /** Messages the application wanted to send while the socket was not open: a plain client has nowhere to keep them. */
  unsendable = 0;
  reopenedAt: number | undefined;
  #down = false;
  #stopped = false;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    readonly url: () => string,
    gen: () => number,
  ) {
    this.check = new StreamCheck(gen);
    this.#open();
  }

  get open(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  send(): void {
    const n = ++this.check.sent;
    if (this.open) this.ws!.send(String(n));
    else this.unsendable++;
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.ws?.terminate();
  }

  #open(): void {
    const ws = new WebSocket(this.url());
    this.ws = ws;
    ws.on('open', () => {
      this.attempt = 0;
      if (this.#down) this.reopenedAt ??= performance.now();
    });
    ws.on('message', (data) => this.check.receive(String(data)));
    ws.on('error', () => undefined); // a close follows
    ws.on('close', () => {
      if (this.#stopped) return;
      this.#down = true;
      this.#timer = setTimeout(() => this.#open(), backoffDelay(++this.attempt, DEFAULT_BACKOFF));
    });
  }
}

interface BaselineResult {
  reconnect: number[];
  sent: number;
  unanswered: number;
  unsendable: number;
  /** Clients whose stream started over at tick 1 on the new host: the per-connection state was lost. */
  stateLost: number;
}

/** Baseline: the same streams over plain ws, no sessions, through one kill -9. */
async function plainRestart(): Promise<BaselineResult> {
  const dir = tempDir('r1-plain');
  let gen = 1;
  const plugin = dir.write('plugin.ts', streamPlugin(gen));
  let host = await startHost({ plugin, port: 0 });
  let port = host.port;
  const clients: PlainClient[] = [];
  let pump: ReturnType<typeof setInterval> | undefined;
  try {
    for (let i = 0; i < N; i++) clients.push(new PlainClient(() => `ws://127.0.0.1:${port}/`, () => gen));
    await waitFor(() => clients.every((c) => c.open), `${N} plain clients open`);
    pump = setInterval(() => clients.forEach((c) => c.send()), SEND_MS);
    await waitFor(() => clients.every((c) => c.check.ticks.max >= 3 && c.check.replies.max >= 2), 'plain streams flowing');
    gen = 2;
    dir.write('plugin.ts', streamPlugin(gen));
    const t0 = performance.now();
    await stopForRestart(host.child, 'SIGKILL');
    host = await restartHost({ plugin, port });
    port = host.port;
    await waitFor(() => clients.every((c) => c.reopenedAt !== undefined && c.check.firstNewTick !== undefined), 'plain clients back');
    clearInterval(pump);
    pump = undefined;
    const answerable = (c: PlainClient) => c.check.sent - c.unsendable;
    await waitFor(() => clients.every((c) => c.check.replies.seen.size >= answerable(c)), 'plain replies', 5_000).catch(() => undefined);
    return {
      reconnect: clients.map((c) => c.reopenedAt! - t0),
      sent: clients.reduce((a, c) => a + c.check.sent, 0),
      unanswered: clients.reduce((a, c) => a + answerable(c) - c.check.replies.seen.size, 0),
      unsendable: clients.reduce((a, c) => a + c.unsendable, 0),
      stateLost: clients.filter((c) => c.check.firstNewTick === 1).length,
    };
  } finally {
    if (pump) clearInterval(pump);
    for (const c of clients) c.stop();
    await stopChild(host.child);
    dir.remove();
  }
}

/** µs per store write of one sent message with its state (what the session layer does before every send). */
function writeCost(store: SessionStore, n: number): number {
  store.write('bench', { create: true, touchedAt: Date.now() });
  const t0 = process.hrtime.bigint();
  for (let i = 1; i <= n; i++) store.write('bench', { out: [i, 'message ' + i], inSeq: i, state: '{"n":' + i + '}', touchedAt: Date.now() });
  return Number(process.hrtime.bigint() - t0) / 1000 / n;
}

function storeCost(): { fileUs: number; memUs: number } {
  const n = args.quick ? 5_000 : 50_000;
  const dir: TempDir = tempDir('r1-write');
  try {
    // Compaction off: the figure is the append, not the occasional rewrite.
    const file = new FileSessionStore(dir.dir, { compactBytes: 1 << 30 });
    const fileUs = writeCost(file, n);
    file.close();
    return { fileUs, memUs: writeCost(new MemorySessionStore(), n) };
  } finally {
    dir.remove();
  }
}

const p = (values: number[], q: number) => ms(quantile(values, q));

function resumeRow(kind: RestartKind, r: RestartResult, baseline: string, baseP50: number | undefined): BenchRow {
  return {
    figure: `R1 reconnect-and-resume after ${LABELS[kind]} (${N} clients, file store), p50 / p99 from the ${kind === 'term' ? 'SIGTERM' : 'kill'}`,
    hotline: `${p(r.resume, 0.5)} / ${p(r.resume, 0.99)} (new host listening after ${ms(r.hostBack)}; from then ${p(r.afterListen, 0.5)} / ${p(r.afterListen, 0.99)})`,
    baseline,
    ratio: baseP50 === undefined ? '' : ratio(quantile(r.resume, 0.5), baseP50),
    target: '',
  };
}

function messagesRow(kind: RestartKind, r: RestartResult, baseline: string): BenchRow {
  const wrong = r.lost + r.duplicated + r.reordered + r.serverErrors + r.lostSessions;
  return {
    figure: `R1 messages through ${LABELS[kind]} (${N} clients streaming both ways)`,
    hotline: `replayed: ${r.replayed} to clients, ${r.replayedToHost} to the host (${r.resent} queued or unacked resent); lost ${r.lost}, duplicated ${r.duplicated}, reordered ${r.reordered}, lost sessions ${r.lostSessions}`,
    baseline,
    ratio: '',
    target: 'lost 0',
    met: wrong === 0,
  };
}

function zeroLoss(kind: RestartKind, r: RestartResult): ZeroLossCount[] {
  const label = LABELS[kind];
  return [
    { name: `R1 ${label} lost`, count: r.lost },
    { name: `R1 ${label} duplicated`, count: r.duplicated },
    { name: `R1 ${label} reordered`, count: r.reordered },
    { name: `R1 ${label} host-side sequence errors`, count: r.serverErrors },
    { name: `R1 ${label} lost sessions`, count: r.lostSessions },
  ];
}

const kill = await sessionRestart('kill');
const hang = await sessionRestart('hang');
const term = await sessionRestart('term');
const plain = await plainRestart();
const cost = storeCost();

const plainLost = plain.unanswered + plain.unsendable;
finish(args, {
  id: 'R1',
  title: 'resume after restart',
  quick: args.quick,
  rows: [
    resumeRow('kill', kill, `plain ws reconnect, no sessions: ${p(plain.reconnect, 0.5)} / ${p(plain.reconnect, 0.99)}`, quantile(plain.reconnect, 0.5)),
    messagesRow(
      'kill',
      kill,
      `plain ws: ${plainLost} of ${plain.sent} client messages lost (${plain.unanswered} unanswered, ${plain.unsendable} while down); server stream restarted from 1 on ${plain.stateLost} of ${N} clients`,
    ),
    resumeRow('hang', hang, 'n/a', undefined),
    messagesRow('hang', hang, 'n/a'),
    resumeRow('term', term, 'n/a', undefined),
    messagesRow('term', term, 'n/a'),
    {
      figure: 'R1 store write before each send (one message with its state)',
      hotline: `file store ${cost.fileUs.toFixed(2)} µs`,
      baseline: `memory store ${cost.memUs.toFixed(2)} µs`,
      ratio: ratio(cost.fileUs, cost.memUs),
      target: '',
    },
  ],
  zeroLoss: [...zeroLoss('kill', kill), ...zeroLoss('hang', hang), ...zeroLoss('term', term)],
  notes: [
    `each client: a tick from the host every ${TICK_MS} ms and a message to it every ${SEND_MS} ms; hotline's client and the plain baseline use the same backoff (250 ms doubling, full jitter), so most of the resume time is the wait while no host listens.`,
    `replayed to clients = messages received after \`resumed\` that the killed (or stopped) host had sent; replayed to the host = client messages sent before the stop that only the new host handled; "resent" also counts what the client queued while no host listened. On loopback the kernel still delivers what a killed host had written to its sockets, so few server messages need a replay; across a network, or when the host's socket buffers are full, more do.`,
    'the graceful stop drains with a reconnect hint (1 s, jittered), so its clients wait on purpose; the new host starts once the old one has exited.',
    `the hung host is frozen with SIGSTOP until every client has sent one more message into its socket, then killed -9 (a watchdog's kill): those messages are the ones replayed to the host.`,
    ...(kill.samePort && hang.samePort && term.samePort ? [] : ['the restarted host could not take the same port back and listened on another one; clients followed it.']),
  ],
});
