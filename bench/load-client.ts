/**
 * The load generator: WebSocket clients in separate processes, each message numbered, so loss, duplication and
 * reordering are counted per connection rather than guessed, and reply latency is measured per message.
 *
 * Run alone:
 *   node --import tsx bench/load-client.ts --url ws://127.0.0.1:8080 --connections 1000 --rate 2000 --duration 10
 *   flags: --processes 2 (client processes), --mode rate|pingpong, --window 1 (pingpong: messages in flight per
 *   connection), --payload 32 (bytes per message), --json (print the merged result as JSON)
 *
 * Or from a bench: `const load = await LoadGroup.connect({...}); const r = await load.run({...}); await load.close()`.
 *
 * Wire format: a text message `<seq>:<padding>`. The server's reply must end with the message it got, optionally
 * after a prefix ending in `|` (hotline's test plugins reply `tag|data`); the client reads the sequence number after
 * the last `|`.
 */
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { fdLimit, forkTs, nextMessage, ofType, stopChild } from './lib/processes.js';
import { Histogram, type HistogramJson } from './lib/stats.js';

export type LoadMode = 'rate' | 'pingpong';

export interface ConnectOptions {
  url: string;
  /** Connections in total, spread over the processes. */
  connections: number;
  /** Client processes. Default 2. */
  processes?: number;
  /**
   * Source addresses (127.0.0.2, ...), used in turn by the connections of every process: so 10,000 sockets never run
   * short of ephemeral ports, and so a host with per-IP limits on sees its normal clients spread over addresses.
   */
  localAddresses?: string[];
  /** Connections opening at once per process. Default 200. */
  connectConcurrency?: number;
}

export interface RunOptions {
  mode: LoadMode;
  durationMs: number;
  /** rate mode: messages per second in total, spread evenly over every connection. */
  rate?: number;
  /**
   * rate mode: how often the sends due are topped up, in ms. Default 5. A latency figure wants 1: a 5 ms top-up sends
   * its messages as one batch, and the replies' p99 then measures the batch's queue (and how the client processes'
   * ticks happen to line up) more than the host.
   */
  tickMs?: number;
  /** pingpong mode: messages in flight per connection. Default 1. */
  window?: number;
  /** Bytes per message (at least the sequence number). Default 32. */
  payload?: number;
  /** After the run, wait this long at most for replies still in flight. Default 5,000 ms. */
  drainMs?: number;
}

/** What one run measured, merged over every client process. */
export interface LoadResult {
  connections: number;
  sent: number;
  received: number;
  /** Messages never answered (after the drain wait). */
  lost: number;
  duplicated: number;
  /** Replies that arrived after a later sequence number of the same connection. */
  reordered: number;
  /** Connections that closed during the run (a clean run has 0). */
  closed: number;
  /** rate mode: sends skipped because a connection already had 64 messages unanswered. */
  skipped: number;
  elapsedMs: number;
  /** Replies per second over the run. */
  throughput: number;
  latency: { p50: number; p99: number; max: number; mean: number };
  /** Longest time, in ms, any client process waited with messages in flight and no reply arriving. */
  worstStallMs: number;
}

interface WorkerResult {
  type: 'result';
  sent: number;
  received: number;
  lost: number;
  duplicated: number;
  reordered: number;
  closed: number;
  skipped: number;
  elapsedMs: number;
  worstStallMs: number;
  histogram: HistogramJson;
}

type ToWorker =
  | { type: 'connect'; url: string; connections: number; localAddresses?: string[]; first: number; concurrency: number }
  | { type: 'run'; options: RunOptions }
  | { type: 'close' };

const SELF = fileURLToPath(import.meta.url);
// Outstanding messages tracked per connection: a ring of send times indexed by seq.
const RING = 64;

/** A set of client processes holding open connections, ready to run load phases. */
export class LoadGroup {
  #workers: ChildProcess[];
  #connections: number;

  private constructor(workers: ChildProcess[], connections: number) {
    this.#workers = workers;
    this.#connections = connections;
  }

  get connections(): number {
    return this.#connections;
  }

  /** Fork the client processes and open every connection. Rejects if any connection fails to open. */
  static async connect(o: ConnectOptions): Promise<LoadGroup> {
    const n = Math.max(1, Math.min(o.processes ?? 2, o.connections));
    const workers: ChildProcess[] = [];
    const per = Math.ceil(o.connections / n);
    try {
      const ready: Array<Promise<{ type: 'connected'; opened: number; failed: number; error?: string }>> = [];
      for (let i = 0; i < n; i++) {
        const count = Math.min(per, o.connections - i * per);
        if (count <= 0) break;
        const w = forkTs(SELF, [], { env: { HOTLINE_LOAD_WORKER: '1' }, fds: count + 256 });
        workers.push(w);
        const msg: ToWorker = {
          type: 'connect',
          url: o.url,
          connections: count,
          concurrency: o.connectConcurrency ?? 200,
          ...(o.localAddresses?.length ? { localAddresses: o.localAddresses } : {}),
          first: i * per,
        };
        ready.push(nextMessage(w, ofType<{ type: 'connected'; opened: number; failed: number; error?: string }>('connected'), 120_000, 'connect'));
        w.send(msg);
      }
      const results = await Promise.all(ready);
      const failed = results.reduce((a, r) => a + r.failed, 0);
      if (failed > 0) {
        const why = results.find((r) => r.error)?.error ?? 'unknown';
        throw new Error(`${failed} of ${o.connections} connections failed to open (${why}); fd limit ${fdLimit().soft}`);
      }
      return new LoadGroup(workers, o.connections);
    } catch (err) {
      await Promise.all(workers.map((w) => stopChild(w)));
      throw err;
    }
  }

  /** Run one load phase on every process at once and merge the results. */
  async run(options: RunOptions): Promise<LoadResult> {
    const n = this.#workers.length;
    const perProcess: RunOptions = { ...options, ...(options.rate !== undefined ? { rate: options.rate / n } : {}) };
    const timeout = options.durationMs + (options.drainMs ?? 5000) + 30_000;
    const pending = this.#workers.map((w) => nextMessage(w, ofType<WorkerResult>('result'), timeout, 'load run'));
    for (const w of this.#workers) w.send({ type: 'run', options: perProcess } satisfies ToWorker);
    const results = await Promise.all(pending);
    const h = new Histogram();
    const sum = (k: 'sent' | 'received' | 'lost' | 'duplicated' | 'reordered' | 'closed' | 'skipped') => results.reduce((a, r) => a + r[k], 0);
    for (const r of results) h.merge(r.histogram);
    const elapsedMs = Math.max(...results.map((r) => r.elapsedMs));
    return {
      connections: this.#connections,
      sent: sum('sent'),
      received: sum('received'),
      lost: sum('lost'),
      duplicated: sum('duplicated'),
      reordered: sum('reordered'),
      closed: sum('closed'),
      skipped: sum('skipped'),
      elapsedMs,
      throughput: (sum('received') / elapsedMs) * 1000,
      latency: { p50: h.quantileUs(0.5) / 1000, p99: h.quantileUs(0.99) / 1000, max: h.maxUs / 1000, mean: h.count ? h.sumUs / h.count / 1000 : 0 },
      worstStallMs: Math.max(...results.map((r) => r.worstStallMs)),
    };
  }

  /** Close every connection and end the processes. Idempotent. */
  async close(): Promise<void> {
    const workers = this.#workers.splice(0);
    await Promise.all(
      workers.map(async (w) => {
        if (w.connected) w.send({ type: 'close' } satisfies ToWorker);
        const exited = new Promise<void>((resolve) => (w.exitCode !== null ? resolve() : w.once('exit', () => resolve())));
        const timer = setTimeout(() => void stopChild(w), 10_000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }
}

/** One numbered stream: what was sent, what came back, and when. */
class Stream {
  readonly ws: WebSocket;
  nextSeq = 0;
  maxSeen = -1;
  received = 0;
  duplicated = 0;
  reordered = 0;
  holes: Set<number> | undefined;
  readonly sentAt = new Float64Array(RING);
  open = true;

  constructor(ws: WebSocket) {
    this.ws = ws;
  }

  get outstanding(): number {
    return this.nextSeq - this.received;
  }
}

/** The client process: opens its share of connections, then runs phases on command. */
class Worker {
  #streams: Stream[] = [];
  #running = false;
  #closed = 0;
  #hist = new Histogram();
  #outstanding = 0;
  #waitingSince = -1;
  #worstStall = 0;
  #mode: LoadMode = 'rate';
  #payloadPad = '';
  #onDrained: (() => void) | undefined;

  async connect(m: Extract<ToWorker, { type: 'connect' }>): Promise<void> {
    let opened = 0;
    let failed = 0;
    let error: string | undefined;
    let next = 0;
    const openOne = async (): Promise<void> => {
      while (next < m.connections) {
        const n = m.first + next++;
        try {
          this.#streams.push(await this.#open(m.url, m.localAddresses?.[n % m.localAddresses.length]));
          opened++;
        } catch (err) {
          failed++;
          error ??= err instanceof Error ? err.message : String(err);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(m.concurrency, m.connections) }, openOne));
    process.send!({ type: 'connected', opened, failed, ...(error ? { error } : {}) });
  }

  #open(url: string, localAddress: string | undefined): Promise<Stream> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false, ...(localAddress ? { localAddress } : {}) });
      const s = new Stream(ws);
      ws.once('open', () => {
        ws.off('error', reject);
        ws.on('error', () => undefined);
        resolve(s);
      });
      ws.once('error', reject);
      ws.on('message', (data) => this.#onReply(s, data as Buffer));
      ws.on('close', () => {
        if (s.open && this.#running) this.#closed++;
        s.open = false;
      });
    });
  }

  #send(s: Stream): void {
    const seq = s.nextSeq++;
    s.sentAt[seq % RING] = performance.now();
    if (this.#outstanding++ === 0) this.#waitingSince = performance.now();
    s.ws.send(this.#payloadPad ? `${seq}:${this.#payloadPad}` : String(seq));
  }

  #onReply(s: Stream, data: Buffer): void {
    const now = performance.now();
    const text = data.toString();
    const bar = text.lastIndexOf('|');
    const seq = Number.parseInt(bar < 0 ? text : text.slice(bar + 1), 10);
    if (!(seq >= 0 && seq < s.nextSeq)) return;
    if (seq <= s.maxSeen) {
      if (s.holes?.delete(seq)) s.reordered++;
      else {
        s.duplicated++;
        return;
      }
    } else {
      for (let k = s.maxSeen + 1; k < seq; k++) (s.holes ??= new Set()).add(k);
      s.maxSeen = seq;
    }
    s.received++;
    this.#hist.record((now - s.sentAt[seq % RING]!) * 1000);
    if (this.#waitingSince >= 0 && now - this.#waitingSince > this.#worstStall) this.#worstStall = now - this.#waitingSince;
    this.#outstanding--;
    this.#waitingSince = this.#outstanding > 0 ? now : -1;
    if (this.#running && this.#mode === 'pingpong' && s.open) this.#send(s);
    if (this.#outstanding === 0) this.#onDrained?.();
  }

  async run(o: RunOptions): Promise<void> {
    this.#hist = new Histogram();
    this.#closed = 0;
    this.#worstStall = 0;
    this.#mode = o.mode;
    const payload = Math.max(0, (o.payload ?? 32) - 8);
    this.#payloadPad = 'x'.repeat(payload);
    const base = this.#streams.map((s) => ({ sent: s.nextSeq, received: s.received, dup: s.duplicated, re: s.reordered }));
    let skipped = 0;
    this.#running = true;
    const start = performance.now();
    let timer: NodeJS.Timeout | undefined;
    if (o.mode === 'pingpong') {
      for (const s of this.#streams) for (let k = 0; k < (o.window ?? 1); k++) if (s.open) this.#send(s);
    } else {
      // Spread `rate` messages/s evenly over the connections, round robin, topping up every tickMs (5 ms).
      const rate = o.rate ?? 1000;
      let due = 0;
      let sent = 0;
      let cursor = 0;
      timer = setInterval(() => {
        due = Math.floor(((performance.now() - start) / 1000) * rate);
        while (sent < due && this.#streams.length > 0) {
          const s = this.#streams[cursor]!;
          cursor = (cursor + 1) % this.#streams.length;
          sent++;
          if (!s.open) continue;
          if (s.outstanding >= RING) skipped++;
          else this.#send(s);
        }
      }, o.tickMs ?? 5);
    }
    await new Promise((resolve) => setTimeout(resolve, o.durationMs));
    clearInterval(timer);
    this.#running = false;
    const elapsedMs = performance.now() - start;
    if (this.#outstanding > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, o.drainMs ?? 5000);
        this.#onDrained = () => (clearTimeout(t), resolve());
      });
      this.#onDrained = undefined;
    }
    let sent = 0;
    let received = 0;
    let duplicated = 0;
    let reordered = 0;
    this.#streams.forEach((s, i) => {
      const b = base[i]!;
      sent += s.nextSeq - b.sent;
      received += s.received - b.received;
      duplicated += s.duplicated - b.dup;
      reordered += s.reordered - b.re;
    });
    const result: WorkerResult = {
      type: 'result',
      sent,
      received,
      lost: sent - received,
      duplicated,
      reordered,
      closed: this.#closed,
      skipped,
      elapsedMs,
      worstStallMs: this.#worstStall,
      histogram: this.#hist.toJSON(),
    };
    process.send!(result);
  }

  close(): void {
    this.#running = false;
    let open = 0;
    for (const s of this.#streams) {
      if (!s.open) continue;
      open++;
      s.ws.once('close', () => {
        if (--open === 0) process.exit(0);
      });
      s.ws.close(1000);
    }
    if (open === 0) process.exit(0);
    // A server that never answers the close handshake must not keep the bench waiting.
    setTimeout(() => process.exit(0), 5000).unref();
  }
}

function worker(): void {
  const w = new Worker();
  process.on('message', (m: ToWorker) => {
    if (m.type === 'connect') void w.connect(m);
    else if (m.type === 'run') void w.run(m.options);
    else w.close();
  });
  process.on('disconnect', () => process.exit(0));
}

async function cli(): Promise<void> {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      connections: { type: 'string', default: '100' },
      rate: { type: 'string', default: '1000' },
      duration: { type: 'string', default: '10' },
      processes: { type: 'string', default: '2' },
      mode: { type: 'string', default: 'rate' },
      window: { type: 'string', default: '1' },
      payload: { type: 'string', default: '32' },
      json: { type: 'boolean', default: false },
    },
  });
  if (!values.url) {
    console.error('usage: node --import tsx bench/load-client.ts --url ws://host:port [--connections N] [--rate msgs/s] [--duration s]\n' +
      '       [--processes 2] [--mode rate|pingpong] [--window 1] [--payload 32] [--json]');
    process.exit(2);
  }
  const mode = values.mode === 'pingpong' ? 'pingpong' : 'rate';
  const load = await LoadGroup.connect({ url: values.url, connections: Number(values.connections), processes: Number(values.processes) });
  try {
    const r = await load.run({
      mode,
      durationMs: Number(values.duration) * 1000,
      rate: Number(values.rate),
      window: Number(values.window),
      payload: Number(values.payload),
    });
    if (values.json) console.log(JSON.stringify(r, null, 2));
    else console.log(formatLoadResult(r));
  } finally {
    await load.close();
  }
}

/** One line per result, for humans. */
export function formatLoadResult(r: LoadResult): string {
  const f = (n: number) => n.toFixed(2);
  return [
    `connections ${r.connections}, sent ${r.sent}, received ${r.received}, lost ${r.lost}, duplicated ${r.duplicated}, reordered ${r.reordered}, closed ${r.closed}`,
    `throughput ${Math.round(r.throughput)} msg/s over ${Math.round(r.elapsedMs)} ms`,
    `latency ms: p50 ${f(r.latency.p50)}, p99 ${f(r.latency.p99)}, max ${f(r.latency.max)}; worst stall ${f(r.worstStallMs)} ms`,
  ].join('\n');
}

if (process.env.HOTLINE_LOAD_WORKER === '1' && process.send) worker();
else if (process.argv[1] && path.resolve(process.argv[1]) === SELF) await cli();
