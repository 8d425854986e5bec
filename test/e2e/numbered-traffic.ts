/**
 * Numbered traffic for the continuity tests: many real clients, each sending sequence numbers with a small window of
 * messages in flight, and checking every reply on arrival. Replies are checked as they come (nothing is stored per
 * message), so thousands of messages per client cost no memory.
 *
 * The plugin under test replies `${gen}:${seen}:${total}:${data}`:
 * - `data` is the sequence number the client sent, so a reply out of turn is lost, duplicated or reordered;
 * - `seen` is the per-connection counter (connection state carried by migrateConnection), so it must equal `data`;
 * - `total` is the global counter (global state carried by migrate), so it must strictly increase per client;
 * - `gen` is the plugin generation that answered, so it must never go back to an older generation.
 */
import net from 'node:net';
import WebSocket from 'ws';

/** The plugin the continuity tests swap: generation `gen` of a counting echo. */
export function continuityPlugin(gen: number): string {
  return `
import { definePlugin } from 'hotline';
const GEN = ${gen};
export default definePlugin<{ total: number }, { seen: number }>({
  name: 'continuity',
  version: '1.0.${gen}',
  api: 1,
  init: () => ({ total: 0 }),
  migrate: (prev) => ({ total: (prev.state as { total: number }).total }),
  migrateConnection: (prev) => ({ seen: (prev as { seen: number }).seen }),
  onOpen(conn) {
    conn.state = { seen: 0 };
  },
  async onMessage(conn, data, ctx) {
    ctx.state.total++;
    conn.state.seen++;
    const reply = GEN + ':' + conn.state.seen + ':' + ctx.state.total + ':' + String(data);
    // Every 8th message settles later, so swaps meet handlers in flight and must wait for them at suspend.
    if (conn.state.seen % 8 === 0) await new Promise<void>((resolve) => setTimeout(resolve, 0));
    conn.send(reply);
  },
});
`;
}

/** The label a host gives generation `gen` of {@link continuityPlugin}. */
export function continuityLabel(gen: number): string {
  return `continuity@1.0.${gen}`;
}

/** Counts of everything that went wrong, summed over clients. All must be 0. */
export interface TrafficCounts {
  clients: number;
  sent: number;
  received: number;
  /** Sent but never answered (counted after the final drain). */
  lost: number;
  /** A reply for a sequence number already answered. */
  duplicated: number;
  /** A reply for a later sequence number while an earlier one is still unanswered. */
  reordered: number;
  /** Connections that closed while traffic ran. */
  closed: number;
  /** Replies whose per-connection counter is not the sequence number. */
  connStateBreaks: number;
  /** Replies whose global counter did not increase. */
  globalStateBreaks: number;
  /** Replies from an older plugin generation than one the client had already seen. */
  generationRegressions: number;
  /** Replies that did not parse. */
  malformed: number;
  /** Highest global counter any reply carried. */
  maxTotal: number;
  /** Distinct plugin generations that answered. */
  generations: number;
}

/** One connection's transport, reduced to what the traffic needs. */
interface Wire {
  send(seq: number): void;
  close(): void;
}

/** One numbered client: sends 1, 2, 3, … keeping up to `window` unanswered, and checks each reply. */
class NumberedClient {
  sent = 0;
  received = 0;
  duplicated = 0;
  reordered = 0;
  closed = false;
  connStateBreaks = 0;
  globalStateBreaks = 0;
  generationRegressions = 0;
  malformed = 0;
  lastTotal = 0;
  lastGen = -1;
  gens = new Set<number>();
  wire: Wire | undefined;
  #traffic: NumberedTraffic;

  constructor(traffic: NumberedTraffic) {
    this.#traffic = traffic;
  }

  pump(): void {
    const t = this.#traffic;
    const wire = this.wire;
    if (!wire || this.closed) return;
    while (t.running && this.sent - this.received < t.window && this.sent < t.maxPerClient) {
      wire.send(++this.sent);
      t.outstanding++;
    }
  }

  reply(text: string): void {
    const [g, seen, total, data] = text.split(':');
    const gen = Number(g);
    const seq = Number(data);
    if (!Number.isInteger(gen) || !Number.isInteger(seq) || seen === undefined || total === undefined) {
      this.malformed++;
      return;
    }
    const expected = this.received + 1;
    if (seq < expected) {
      this.duplicated++;
      return;
    }
    if (seq > expected) this.reordered++;
    this.#traffic.outstanding -= seq - this.received;
    this.received = seq;
    if (Number(seen) !== seq) this.connStateBreaks++;
    const t = Number(total);
    if (!(t > this.lastTotal)) this.globalStateBreaks++;
    this.lastTotal = t;
    if (gen < this.lastGen) this.generationRegressions++;
    this.lastGen = gen;
    this.gens.add(gen);
    this.#traffic.replied();
    this.pump();
  }
}

/** A crowd of numbered clients over WebSocket and newline-framed TCP. */
export class NumberedTraffic {
  readonly window: number;
  readonly maxPerClient: number;
  running = false;
  /** Messages sent and not yet answered, over all clients. */
  outstanding = 0;
  /** Replies received so far, over all clients. */
  replies = 0;
  #clients: NumberedClient[] = [];
  #waiters: Array<{ done: () => boolean; resolve: () => void }> = [];
  #sockets: Array<WebSocket | net.Socket> = [];
  /** Close codes (WS) or 'end' (TCP) seen after {@link expectClose}. */
  readonly endings: Array<number | 'end' | 'error'> = [];
  #expectingClose = false;

  constructor(options: { window?: number; maxPerClient?: number } = {}) {
    this.window = options.window ?? 4;
    this.maxPerClient = options.maxPerClient ?? 5_000;
  }

  /** Open `n` WebSocket clients to `url`. */
  async addWs(url: string, n: number): Promise<void> {
    await Promise.all(Array.from({ length: n }, () => this.#openWs(url)));
  }

  /** Open `n` newline-framed TCP clients to `port`. */
  async addTcp(port: number, n: number, host = '127.0.0.1'): Promise<void> {
    await Promise.all(Array.from({ length: n }, () => this.#openTcp(port, host)));
  }

  /** Start sending on every client. */
  start(): void {
    this.running = true;
    for (const c of this.#clients) c.pump();
  }

  /** Stop sending; replies still in flight keep arriving. */
  stop(): void {
    this.running = false;
  }

  /** Resolve once `n` more replies have arrived than now, or reject after `timeoutMs`. */
  progress(n: number, timeoutMs: number): Promise<void> {
    const target = this.replies + n;
    return this.#until(() => this.replies >= target, timeoutMs, () => `waited for ${n} replies, got ${this.replies - (target - n)}`);
  }

  /** Resolve once every message sent has been answered, or reject after `timeoutMs`. */
  drained(timeoutMs: number): Promise<void> {
    return this.#until(() => this.outstanding <= 0, timeoutMs, () => `${this.outstanding} messages still unanswered`);
  }

  /** From now on closes are expected (a shutdown) and recorded in {@link endings} instead of counted as failures. */
  expectClose(): void {
    this.#expectingClose = true;
  }

  /** Resolve once every connection has ended, or reject after `timeoutMs`. */
  allEnded(timeoutMs: number): Promise<void> {
    return this.#until(() => this.endings.length >= this.#clients.length, timeoutMs, () => `${this.endings.length} of ${this.#clients.length} connections ended`);
  }

  counts(): TrafficCounts {
    const c: TrafficCounts = {
      clients: this.#clients.length,
      sent: 0,
      received: 0,
      lost: 0,
      duplicated: 0,
      reordered: 0,
      closed: 0,
      connStateBreaks: 0,
      globalStateBreaks: 0,
      generationRegressions: 0,
      malformed: 0,
      maxTotal: 0,
      generations: 0,
    };
    const gens = new Set<number>();
    for (const k of this.#clients) {
      c.sent += k.sent;
      c.received += k.received;
      c.lost += k.sent - k.received;
      c.duplicated += k.duplicated;
      c.reordered += k.reordered;
      c.closed += k.closed ? 1 : 0;
      c.connStateBreaks += k.connStateBreaks;
      c.globalStateBreaks += k.globalStateBreaks;
      c.generationRegressions += k.generationRegressions;
      c.malformed += k.malformed;
      c.maxTotal = Math.max(c.maxTotal, k.lastTotal);
      for (const g of k.gens) gens.add(g);
    }
    c.generations = gens.size;
    return c;
  }

  /** Close every client from this side. Idempotent. */
  closeAll(): void {
    this.#expectingClose = true;
    for (const s of this.#sockets) {
      if (s instanceof WebSocket) s.terminate();
      else s.destroy();
    }
  }

  replied(): void {
    this.replies++;
    if (this.#waiters.length > 0) this.#check();
  }

  #check(): void {
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.done()) return true;
      w.resolve();
      return false;
    });
  }

  #until(done: () => boolean, timeoutMs: number, describe: () => string): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = {
        done,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new Error(describe()));
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  #ended(client: NumberedClient, how: number | 'end' | 'error'): void {
    if (client.closed) return;
    client.closed = !this.#expectingClose;
    if (this.#expectingClose) {
      this.endings.push(how);
      this.#check();
    }
  }

  #openWs(url: string): Promise<void> {
    const client = new NumberedClient(this);
    const ws = new WebSocket(url);
    this.#sockets.push(ws);
    ws.on('message', (data) => client.reply(String(data)));
    ws.on('close', (code) => this.#ended(client, code));
    // A failed connect rejects below; a later error is followed by 'close', which is what counts.
    ws.on('error', () => undefined);
    return new Promise((resolve, reject) => {
      ws.once('open', () => {
        client.wire = { send: (seq) => ws.send(String(seq)), close: () => ws.close() };
        this.#clients.push(client);
        resolve();
      });
      ws.once('error', reject);
    });
  }

  #openTcp(port: number, host: string): Promise<void> {
    const client = new NumberedClient(this);
    const socket = net.connect(port, host);
    this.#sockets.push(socket);
    let buf = '';
    socket.setEncoding('utf8');
    socket.setNoDelay(true);
    socket.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) !== -1) {
        client.reply(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    });
    // 'end' is the server's clean FIN; an error (a reset) is not a clean end.
    let errored = false;
    socket.on('error', () => {
      errored = true;
    });
    socket.on('end', () => socket.end());
    socket.on('close', () => this.#ended(client, errored ? 'error' : 'end'));
    return new Promise((resolve, reject) => {
      socket.once('connect', () => {
        client.wire = { send: (seq) => socket.write(seq + '\n'), close: () => socket.end() };
        this.#clients.push(client);
        resolve();
      });
      socket.once('error', reject);
    });
  }
}
