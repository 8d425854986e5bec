/**
 * What the cross-node room tests share: a plugin driven by its clients, forked node processes, and a member that
 * checks what it receives per origin by sequence number.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { HostStatus } from '../../src/index.js';
import { type WsClient, wsClient } from '../helpers/clients.js';
import { until } from '../helpers/until.js';

/**
 * Clients drive it:
 *   join:<room>, leave:<room>            reply `ok:join` / `ok:leave`
 *   burst:<room>:<origin>:<from>:<n>     ctx.to(room).send(`<origin>:<k>`) for k = from .. from+n-1, then reply `ok:burst`
 *   id                                   reply `ok:id:<conn.id>`
 *   direct:<id>:<origin>:<k>             ctx.toConnection(id).send(`<origin>:<k>`), reply `ok:direct:<what send returned>`
 * Every room message is `<origin>:<k>`; replies start with `ok:`.
 */
export const busPlugin = (tag: string): string => `
import { definePlugin } from 'hotline';
export default definePlugin({
  name: 'bus', version: '${tag}', api: 1,
  onMessage(conn, data, ctx) {
    const [cmd, room = '', origin = '', from = '0', n = '0'] = String(data).split(':');
    if (cmd === 'join') { conn.join(room); conn.send('ok:join'); }
    else if (cmd === 'leave') { conn.leave(room); conn.send('ok:leave'); }
    else if (cmd === 'id') conn.send('ok:id:' + conn.id);
    else if (cmd === 'direct') conn.send('ok:direct:' + ctx.toConnection(room).send(origin + ':' + from));
    else if (cmd === 'burst') {
      const f = Number(from);
      for (let k = f; k < f + Number(n); k++) ctx.to(room).send(origin + ':' + k);
      conn.send('ok:burst');
    }
  },
});
`;

const NODE_SCRIPT = fileURLToPath(new URL('./room-node-process.ts', import.meta.url));

/** One forked node: its port, and its status and reload over IPC. */
export class RoomNode {
  readonly child: ChildProcess;
  readonly port: number;
  #next = 0;

  private constructor(child: ChildProcess, port: number) {
    this.child = child;
    this.port = port;
  }

  static start(plugin: string, nats: string, node: string, whileDown: 'buffer' | 'drop' = 'buffer', maxPayload?: number): Promise<RoomNode> {
    const child = spawn(process.execPath, ['--import', 'tsx', NODE_SCRIPT, plugin, nats, node, whileDown, ...(maxPayload ? [String(maxPayload)] : [])], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
    return new Promise((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const m = /ready (\d+)/.exec(out);
        if (m) resolve(new RoomNode(child, Number(m[1])));
      });
      child.once('exit', (code) => reject(new Error(`node ${node} exited with ${code} before ready: ${out}`)));
    });
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/`;
  }

  #ask<T>(cmd: string, timeoutMs = 10_000): Promise<T> {
    const id = ++this.#next;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => (this.child.off('message', on), reject(new Error(`node did not answer ${cmd}`))), timeoutMs);
      const on = (m: { id: number } & T) => {
        if (m.id !== id) return;
        clearTimeout(timer);
        this.child.off('message', on);
        resolve(m);
      };
      this.child.on('message', on);
      this.child.send({ id, cmd });
    });
  }

  async status(): Promise<HostStatus> {
    return (await this.#ask<{ status: HostStatus }>('status')).status;
  }

  async metrics(): Promise<string> {
    return (await this.#ask<{ text: string }>('metrics')).text;
  }

  async reload(): Promise<{ record?: { outcome: string }; error?: string }> {
    return this.#ask('reload', 30_000);
  }

  kill(): Promise<void> {
    const c = this.child;
    if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGKILL');
    });
  }
}

/**
 * A room member that reads `<origin>:<k>` messages and checks them per origin: each k must be the last one plus one
 * (FIFO, none twice). `expectGaps` allows holes (then only increasing order and no duplicate are errors).
 */
export class Member {
  readonly client: WsClient;
  readonly last = new Map<string, number>();
  readonly counts = new Map<string, number>();
  readonly errors: string[] = [];
  readonly missed = new Map<string, number>();
  replies = 0;
  lastReply = '';

  private constructor(client: WsClient) {
    this.client = client;
    client.ws.on('message', (raw) => this.#take(String(raw)));
  }

  static async connect(url: string): Promise<Member> {
    return new Member(await wsClient(url));
  }

  #take(m: string): void {
    if (m.startsWith('ok:')) {
      this.replies++;
      this.lastReply = m;
      return;
    }
    const i = m.lastIndexOf(':');
    const origin = m.slice(0, i);
    const k = Number(m.slice(i + 1));
    const last = this.last.get(origin) ?? -1;
    if (k <= last) this.errors.push(`${origin}: ${k} after ${last} (duplicate or reordered)`);
    else if (k > last + 1) this.missed.set(origin, (this.missed.get(origin) ?? 0) + (k - last - 1));
    this.last.set(origin, Math.max(k, last));
    this.counts.set(origin, (this.counts.get(origin) ?? 0) + 1);
  }

  /** Send a command and wait for its `ok:` reply, which it returns. */
  async ask(cmd: string, timeoutMs = 10_000): Promise<string> {
    const want = this.replies + 1;
    this.client.send(cmd);
    await until(() => this.replies >= want, `reply to ${cmd}`, timeoutMs);
    return this.lastReply;
  }

  count(origin: string): number {
    return this.counts.get(origin) ?? 0;
  }

  close(): void {
    this.client.ws.close();
  }
}

/** A member that publishes `<origin>:<k>` to a room without pause, `batch` per command, until stopped. */
export class Pump {
  sent = 0;
  #stopped = false;
  #error: unknown;
  readonly #done: Promise<void>;

  constructor(m: Member, room: string, origin: string, batch = 20) {
    this.#done = (async () => {
      // Bounded: a test stops it long before.
      for (let i = 0; i < 100_000 && !this.#stopped; i++) {
        await m.ask(`burst:${room}:${origin}:${this.sent}:${batch}`, 20_000);
        this.sent += batch;
      }
    })().catch((err: unknown) => {
      this.#error = err;
    });
  }

  /** Stop after the command in flight; rethrows if a command went unanswered. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#done;
    if (this.#error) throw this.#error;
  }
}
