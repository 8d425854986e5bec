/**
 * The presence tests' rig: a plugin that answers membership queries and records every onPresence call, forked node
 * processes running it on a test NATS, and clients that join rooms on them.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { HostStatus } from '../../src/index.js';
import { type WsClient, wsClient } from '../helpers/clients.js';

const NODE_SCRIPT = fileURLToPath(new URL('./presence-node-process.ts', import.meta.url));

/**
 * `{join}`, `{leave}` → the member's id; `{members}` → every node's members of the room (ctx.members);
 * `{events}` → every onPresence call this node's plugin got, in order.
 */
export const PRESENCE_PLUGIN = `
import { definePlugin } from 'hotline';
type Ev = { room: string; joined: string[]; left: string[] };
export default definePlugin<{ events: Ev[] }, unknown>({
  name: 'presence', version: '1.0.0', api: 1,
  init: () => ({ events: [] }),
  migrate: (prev) => prev.state as { events: Ev[] },
  async onMessage(conn, data, ctx) {
    const m = JSON.parse(String(data));
    if (m.join) { conn.join(m.join); conn.send(JSON.stringify({ id: conn.id })); }
    else if (m.leave) { conn.leave(m.leave); conn.send(JSON.stringify({ id: conn.id })); }
    else if (m.members) conn.send(JSON.stringify({ members: await ctx.members(m.members) }));
    else if (m.events) conn.send(JSON.stringify({ events: ctx.state.events }));
  },
  onPresence(room, change, ctx) { ctx.state.events.push({ room, joined: change.joined, left: change.left }); },
});
`;

export type PresenceEvent = { room: string; joined: string[]; left: string[] };

export class PresenceNode {
  readonly child: ChildProcess;
  readonly port: number;
  readonly name: string;
  /** A connection in no room, that asks this node's plugin. */
  #observer: WsClient | undefined;

  private constructor(child: ChildProcess, port: number, name: string) {
    this.child = child;
    this.port = port;
    this.name = name;
  }

  static start(plugin: string, nats: string, name: string, heartbeat: number, expireAfter: number): Promise<PresenceNode> {
    const child = spawn(process.execPath, ['--import', 'tsx', NODE_SCRIPT, plugin, nats, name, String(heartbeat), String(expireAfter)], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
    return new Promise((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const m = /ready (\d+)/.exec(out);
        if (m) resolve(new PresenceNode(child, Number(m[1]), name));
      });
      child.once('exit', (code) => reject(new Error(`node ${name} exited with ${code} before ready: ${out}`)));
    });
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/`;
  }

  /** A new client that joins `rooms`; resolves with it and its connection id. */
  async member(...rooms: string[]): Promise<{ client: WsClient; id: string }> {
    const client = await wsClient(this.url);
    let id = '';
    for (const room of rooms) id = (JSON.parse(await ask(client, { join: room })) as { id: string }).id;
    return { client, id };
  }

  async members(room: string): Promise<string[]> {
    return (JSON.parse(await ask(await this.#obs(), { members: room })) as { members: string[] }).members;
  }

  async events(): Promise<PresenceEvent[]> {
    return (JSON.parse(await ask(await this.#obs(), { events: true })) as { events: PresenceEvent[] }).events;
  }

  status(): Promise<HostStatus> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`node ${this.name}: no status within 5 s`)), 5_000);
      this.child.once('message', (m: { status: HostStatus }) => {
        clearTimeout(timer);
        resolve(m.status);
      });
      this.child.send('status');
    });
  }

  async presence(): Promise<NonNullable<HostStatus['presence']>> {
    const p = (await this.status()).presence;
    if (!p) throw new Error(`node ${this.name}: no presence in its status`);
    return p;
  }

  kill9(): Promise<void> {
    this.#observer?.ws.terminate();
    const c = this.child;
    if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGKILL');
    });
  }

  async #obs(): Promise<WsClient> {
    this.#observer ??= await wsClient(this.url);
    return this.#observer;
  }
}

/** Send one request and wait for its reply (the plugin answers each in order, one at a time). */
async function ask(c: WsClient, msg: object): Promise<string> {
  const n = c.inbox.messages.length + 1;
  c.send(JSON.stringify(msg));
  await c.inbox.waitFor(n, 10_000);
  return c.inbox.messages[n - 1]!;
}

/** Sorted, for comparing member sets. */
export function sorted(ids: Iterable<string>): string[] {
  return [...ids].sort();
}

/** How many times each id joined (or left) `room` in `events`. */
export function tally(events: PresenceEvent[], room: string, side: 'joined' | 'left'): Map<string, number> {
  const m = new Map<string, number>();
  for (const e of events) if (e.room === room) for (const id of e[side]) m.set(id, (m.get(id) ?? 0) + 1);
  return m;
}
