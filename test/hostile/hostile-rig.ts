/**
 * Shared pieces of the hostile-input tests (issue 9): a plugin whose every handler awaits 10 ms, an unrelated client
 * that pings every 50 ms and counts its replies, RSS readings, a collector of the host's coded connection errors, and
 * a wait on a condition with a deadline.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { withMallocEnv } from '../../src/host/malloc-env.js';
import type { HostStatus } from '../../src/host/host.js';
import type { HostOptions } from '../../src/host/options.js';
import type { Host } from '../../src/index.js';
import type { ListenAddress } from '../../src/transport/transport.js';
import WebSocket from 'ws';
import { type WsClient, wsClient } from '../helpers/clients.js';
import { until } from '../helpers/until.js';

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
/** `until` with the argument order these tests were written with. */
export const waitUntil = (cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> => until(cond, what, timeoutMs);

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

  get received(): number {
    return this.#client.inbox.messages.length;
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

  /** stop(), then assert every ping was answered once and in order. */
  async stopAndCheck(): Promise<void> {
    assert.ok(this.sent > 0, 'the pinger sent nothing');
    assert.equal(await this.stop(), 0, 'every ping gets its reply');
    assert.deepEqual(
      this.#client.inbox.messages,
      Array.from({ length: this.sent }, (_, i) => `ping:${i + 1}`),
      'every ping gets its reply, in order',
    );
  }

  /** Stop pinging and close (idempotent). */
  close(): void {
    clearInterval(this.#timer);
    this.#client.ws.close();
  }
}

/** A host in a child process (host-child.ts), forked with MALLOC_ENV the way `hotline start` forks its worker. */
export class ChildHost {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly addresses: ListenAddress[];
  readonly codes: string[] = [];

  private constructor(child: ChildProcess, ready: { addresses: ListenAddress[]; pid: number }) {
    this.child = child;
    this.pid = ready.pid;
    this.addresses = ready.addresses;
    child.on('message', (m: { type?: string; code?: string }) => {
      if (m.type === 'error') this.codes.push(m.code!);
    });
  }

  static async start(options: Omit<HostOptions, 'logger'>): Promise<ChildHost> {
    const child = fork(fileURLToPath(new URL('./host-child.ts', import.meta.url)), [JSON.stringify(options)], {
      // --expose-gc: collect() below. The host itself never calls gc; only the tests ask for one.
      execArgv: ['--expose-gc', '--import', 'tsx'],
      env: withMallocEnv({ ...process.env }),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const ready = await new Promise<{ addresses: ListenAddress[]; pid: number }>((resolve, reject) => {
      child.on('message', (m: { type?: string }) => {
        if (m.type === 'ready') resolve(m as { addresses: ListenAddress[]; pid: number });
      });
      child.once('exit', (code) => reject(new Error(`the host child exited (${code}) before it was ready`)));
    });
    return new ChildHost(child, ready);
  }

  /**
   * Stop the host process (SIGSTOP) while `send` writes, and let it go on (SIGCONT) once the writes are in the kernel:
   * the host then finds everything readable at once, as it would a burst from many clients, whatever the scheduler.
   */
  async frozen(send: () => Promise<unknown>): Promise<void> {
    process.kill(this.pid, 'SIGSTOP');
    try {
      await send();
    } finally {
      process.kill(this.pid, 'SIGCONT');
    }
  }

  count(code: string): number {
    return this.codes.filter((c) => c === code).length;
  }

  status(): Promise<HostStatus> {
    return new Promise((resolve) => {
      const on = (m: { type?: string; status?: HostStatus }) => {
        if (m.type !== 'status') return;
        this.child.off('message', on);
        resolve(m.status!);
      };
      this.child.on('message', on);
      this.child.send('status');
    });
  }

  /**
   * A full GC in the host (twice, as `collect` does here). What the memory tests assert after close is that nothing
   * holds the memory any more (a leak survives any GC); when V8 gets round to it on an idle, loaded machine is not
   * something a test can wait for.
   */
  collect(): Promise<void> {
    return new Promise((resolve) => {
      const on = (m: { type?: string }) => {
        if (m.type !== 'collected') return;
        this.child.off('message', on);
        resolve();
      };
      this.child.on('message', on);
      this.child.send('collect');
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.disconnect();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}

/** Send `frame` as fast as the socket takes it, with at most 1 MiB waiting on the client's side, for `ms`. */
export async function floodWs(ws: WebSocket, frame: string | Buffer, ms: number): Promise<number> {
  let sent = 0;
  const until = Date.now() + ms;
  while (Date.now() < until && ws.readyState === WebSocket.OPEN) {
    for (let n = 0; n < 256 && ws.bufferedAmount < MiB; n++, sent++) ws.send(frame);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  return sent;
}

/**
 * `n` TCP connections to a hotline WebSocket port that the host has accepted and reads: each has had a plain HTTP
 * request answered (426) and stays open (keep-alive), so the upgrade request a test sends next on it is read at once.
 * Without that, the host may still be accepting them when the test writes, and a "burst" arrives spread out.
 */
export async function acceptedSockets(port: number, n: number): Promise<net.Socket[]> {
  return Promise.all(
    Array.from({ length: n }, () => new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      let got = '';
      const onData = (d: Buffer) => {
        got += d.toString('latin1');
        if (!got.includes('speaks WebSocket\n')) return;
        s.off('data', onData);
        resolve(s);
      };
      s.on('data', onData);
      s.once('error', reject);
    })),
  );
}

/** A WebSocket upgrade request, for tests that speak HTTP on a raw socket. */
export const UPGRADE_REQUEST =
  'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';

/** The head of the first HTTP answer each socket gets (status line and headers), pushed as it completes. */
export function answerHeads(sockets: net.Socket[]): string[] {
  const heads: string[] = [];
  for (const s of sockets) {
    let head = '';
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      if (!head.includes('\r\n\r\n') && (head += d).includes('\r\n\r\n')) heads.push(head);
    });
  }
  return heads;
}

/** Write `data` and resolve once the kernel has taken it. */
export const written = (s: net.Socket, data: string | Buffer): Promise<void> => new Promise((resolve) => s.write(data, () => resolve()));
