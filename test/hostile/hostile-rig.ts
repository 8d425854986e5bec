/**
 * Shared pieces of the hostile-input tests (issue 9): a plugin whose every handler awaits 10 ms, an unrelated client
 * that pings every 50 ms and counts its replies, RSS readings, a collector of the host's coded connection errors, and
 * a wait on a condition with a deadline.
 */
import { readFileSync } from 'node:fs';
import type { Host } from '../../src/index.js';
import { type WsClient, wsClient } from '../helpers/clients.js';

/**
 * Every message waits 10 ms in its handler. `ping:N` is echoed; `stats` answers at once with the global counts;
 * anything else (the flood) is counted and not answered, so the host's outbound side stays out of the measurement.
 */
export const SLOW_PLUGIN = `
import { definePlugin } from 'hotline';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export default definePlugin<{ flood: number; pings: number }>({
  name: 'slow', version: '1.0.0', api: 1,
  init: () => ({ flood: 0, pings: 0 }),
  async onMessage(conn, data, ctx) {
    if (data === 'stats') return void conn.send(JSON.stringify(ctx.state));
    await sleep(10);
    if (typeof data === 'string' && data.startsWith('ping:')) {
      ctx.state.pings++;
      conn.send(data);
    } else {
      ctx.state.flood++;
    }
  },
});
`;

/** Resolve once `cond()` is true; reject with `what` after `timeoutMs`. */
export async function waitUntil(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Resident set size in bytes: this process's, or another one's through /proc. */
export function rss(pid?: number): number {
  if (pid === undefined) return process.memoryUsage.rss();
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

/** A full GC, twice (weak callbacks free external Buffer memory on the second), when the test runs with --expose-gc. */
export async function collect(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 2; i++) {
    gc?.();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

export const MiB = 1024 * 1024;

/** Every connection-error code the host reports, in order. */
export function errorCodes(host: Host): string[] {
  const codes: string[] = [];
  host.on('connection-error', (err) => codes.push(err.code));
  return codes;
}

/** The unrelated client: sends `ping:N` every 50 ms and counts the replies. */
export class Pinger {
  #client: WsClient;
  #timer: NodeJS.Timeout;
  sent = 0;

  private constructor(client: WsClient) {
    this.#client = client;
    this.#timer = setInterval(() => client.send(`ping:${++this.sent}`), 50);
  }

  static async start(url: string): Promise<Pinger> {
    return new Pinger(await wsClient(url));
  }

  /** Stop pinging, wait (bounded) for the replies in flight, and return how many were never answered. */
  async stop(timeoutMs = 10_000): Promise<number> {
    clearInterval(this.#timer);
    await this.#client.inbox.waitFor(this.sent, timeoutMs).catch(() => undefined);
    this.#client.ws.close();
    const got = new Set(this.#client.inbox.messages);
    let lost = 0;
    for (let i = 1; i <= this.sent; i++) if (!got.has(`ping:${i}`)) lost++;
    return lost;
  }
}
