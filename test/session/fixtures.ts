/**
 * Shared by the session tests: a plugin that streams in both directions and checks order itself, a client-side
 * checker of exactness, and a TCP proxy that cuts connections in the middle of a frame.
 */
import net from 'node:net';
import { connect, type HotlineClient } from '../../src/client/index.js';

/**
 * The server checks that client messages `1, 2, 3…` arrive exactly once and in order (it replies `r<n>`, or
 * `ERR …`), and streams `t<k>` ticks to every connection every `tickMs`, counted in conn.state.
 */
export function streamPlugin(tickMs = 5): string {
  return `
import { definePlugin } from 'hotline';
export default definePlugin<{}, { got: number; tick: number }>({
  name: 'stream', version: '1.0.0', api: 1,
  init(ctx) {
    ctx.setInterval(() => {
      for (const c of ctx.connections) {
        if (!c.state) continue;
        c.state.tick++;
        c.send('t' + c.state.tick);
      }
    }, ${tickMs});
    return {};
  },
  migrate: () => ({}),
  onOpen(conn) { conn.state = { got: 0, tick: 0 }; },
  onMessage(conn, data) {
    const n = Number(data);
    if (n !== conn.state.got + 1) conn.send('ERR expected ' + (conn.state.got + 1) + ' got ' + String(data));
    conn.state.got = n;
    conn.send('r' + n);
  },
});
`;
}

/** Watches what a client receives from streamPlugin and records every violation of exactly-once-in-order. */
export class ExactnessChecker {
  replies = 0;
  ticks = 0;
  errors: string[] = [];
  lost: string[] = [];
  resumes = 0;
  #waiters: Array<() => void> = [];

  constructor(client: HotlineClient) {
    client.on('message', (d) => {
      const s = String(d);
      if (s[0] === 'r') {
        const n = Number(s.slice(1));
        if (n !== this.replies + 1) this.errors.push(`reply ${n} after ${this.replies}`);
        this.replies = n;
      } else if (s[0] === 't') {
        const k = Number(s.slice(1));
        if (k !== this.ticks + 1) this.errors.push(`tick ${k} after ${this.ticks}`);
        this.ticks = k;
      } else {
        this.errors.push(s);
      }
      for (const w of this.#waiters.splice(0)) w();
    });
    client.on('lost-session', (info) => this.lost.push(info.code));
    client.on('resumed', () => this.resumes++);
  }

  /** Resolve once `cond` holds; checked on each message. Rejects after `timeoutMs`. */
  async until(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: replies ${this.replies}, ticks ${this.ticks}, errors ${this.errors.join('; ')}`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }
}

/**
 * The client→server half of streamPlugin's traffic: each client sends `1, 2, 3…`, one message per client every
 * 5 ms, queued by the client while no host serves it (at most 500 queued). stop() ends it and waits for the loop.
 */
export class NumberedPump {
  /** How many each client has sent. */
  readonly sent: number[];
  #pumping = true;
  #loop: Promise<void>;

  constructor(clients: readonly HotlineClient[]) {
    this.sent = clients.map(() => 0);
    this.#loop = (async () => {
      while (this.#pumping) {
        clients.forEach((c, i) => {
          if (c.queued < 500) c.send(String(++this.sent[i]!));
        });
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
  }

  stop(): Promise<void> {
    this.#pumping = false;
    return this.#loop;
  }

  /** Stop, then wait until every client has its reply to every message it sent, each exactly once and in order. */
  async drain(checks: readonly ExactnessChecker[], timeoutMs = 30_000): Promise<void> {
    await this.stop();
    await Promise.all(checks.map((ch, i) => ch.until(() => ch.replies === this.sent[i], 'every reply', timeoutMs)));
  }
}

/** A TCP proxy in front of `port` that can cut every connection in the middle of the next chunk. */
export class CuttingProxy {
  readonly server: net.Server;
  #pairs = new Set<[net.Socket, net.Socket]>();
  #toCut = new Set<[net.Socket, net.Socket]>();
  cuts = 0;

  constructor(targetPort: number) {
    this.server = net.createServer((down) => {
      const up = net.connect(targetPort, '127.0.0.1');
      const pair: [net.Socket, net.Socket] = [down, up];
      this.#pairs.add(pair);
      const forward = (from: net.Socket, to: net.Socket) =>
        from.on('data', (chunk: Buffer) => {
          if (this.#toCut.has(pair) && chunk.length > 1) {
            // Half a chunk goes through, then both sides drop: the peer is left with a torn frame.
            to.write(chunk.subarray(0, chunk.length >> 1));
            this.#cut(pair);
            return;
          }
          to.write(chunk);
        });
      forward(down, up);
      forward(up, down);
      const end = () => {
        this.#pairs.delete(pair);
        down.destroy();
        up.destroy();
      };
      down.on('error', end).on('close', end);
      up.on('error', end).on('close', end);
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Cut each connection at its next chunk, whichever direction it flows. */
  cutOnNextChunk(): void {
    this.#toCut = new Set(this.#pairs);
  }

  get open(): number {
    return this.#pairs.size;
  }

  #cut(pair: [net.Socket, net.Socket]): void {
    this.#toCut.delete(pair);
    if (!this.#pairs.delete(pair)) return;
    this.cuts++;
    // Let the half chunk reach the kernel before the reset.
    setImmediate(() => {
      pair[0].destroy();
      pair[1].destroy();
    });
  }

  close(): Promise<void> {
    for (const [a, b] of this.#pairs) {
      a.destroy();
      b.destroy();
    }
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * `n` session clients of a streamPlugin host at `url`, each checked for exactness, fed by one NumberedPump.
 * `flowing(what)` waits until every client got 30 more replies and some ticks.
 */
export function sessionTraffic(url: string, n: number): { clients: HotlineClient[]; checks: ExactnessChecker[]; pump: NumberedPump; flowing: (what: string) => Promise<void> } {
  const clients = Array.from({ length: n }, () => connect(url, { backoff: { initialDelay: 50, maxDelay: 500 } }));
  const checks = clients.map((c) => new ExactnessChecker(c));
  const pump = new NumberedPump(clients);
  const flowing = async (what: string) => {
    const floor = checks.map((ch) => ch.replies + 30);
    await Promise.all(checks.map((ch, i) => ch.until(() => ch.replies >= floor[i]! && ch.ticks > 0, what, 30_000)));
  };
  return { clients, checks, pump, flowing };
}
