/**
 * A host with one WebSocket and one TCP client that keep sending numbered messages while a test attempts a swap.
 * Every reply names the version that handled it, the connection's counter and the global counter, so a test can
 * prove from the bytes alone that nothing was lost, duplicated or reordered and that state carried over.
 */
import assert from 'node:assert/strict';
import { createHost, type Host, type HostOptions } from '../../src/index.js';
import { type Inbox, tcpClient, wsClient } from '../helpers/clients.js';
import { pluginDir, type PluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';

/** Pieces of plugin source a test swaps in to break one hook. Each is an expression or a statement list. */
export interface PluginParts {
  /** Statements at the module's top level. */
  top?: string;
  api?: number;
  init?: string;
  migrate?: string;
  migrateConnection?: string;
  check?: string;
  /** Leave out onMessage (a shape error). */
  omitOnMessage?: boolean;
}

/** The symbol under which a hung handler leaves its release function. */
export const RELEASE = 'hotline.test.release';

/**
 * A counting echo plugin. It replies `${tag}:${seen}:${total}|${payload}`. The payload `hang` does not settle until
 * the test calls `globalThis[Symbol.for('hotline.test.release')]()`.
 */
export function trafficPlugin(tag: string, parts: PluginParts = {}): string {
  const onMessage = parts.omitOnMessage
    ? ''
    : `onMessage(conn, data, ctx) {
    ctx.state.total++;
    conn.state.seen++;
    const text = typeof data === 'string' ? data : Buffer.from(data).toString();
    const reply = '${tag}:' + conn.state.seen + ':' + ctx.state.total + '|' + text;
    if (text !== 'hang') { conn.send(reply); return; }
    return new Promise<void>((resolve) => {
      (globalThis as Record<symbol, unknown>)[Symbol.for('${RELEASE}')] = () => { conn.send(reply); resolve(); };
    });
  },`;
  return `
import { definePlugin } from 'hotline';
${parts.top ?? ''}
export default definePlugin<{ total: number }, { seen: number; transport: string }>({
  name: 'traffic', version: '${tag}', api: ${parts.api ?? 1},
  init: ${parts.init ?? '() => ({ total: 0 })'},
  migrate: ${parts.migrate ?? '(prev) => ({ total: (prev.state as { total: number }).total })'},
  migrateConnection: ${parts.migrateConnection ?? '(prev) => prev as { seen: number; transport: string }'},
  ${parts.check ? `check: ${parts.check},` : ''}
  onOpen(conn) { conn.state = { seen: 0, transport: conn.transport }; },
  ${onMessage}
});
`;
}

/** One reply, parsed. */
export interface Reply {
  tag: string;
  seen: number;
  total: number;
  payload: string;
}

export function parseReply(line: string): Reply {
  const m = /^([^:]+):(\d+):(\d+)\|(.*)$/s.exec(line);
  assert.ok(m, `not a traffic reply: ${JSON.stringify(line)}`);
  return { tag: m[1]!, seen: Number(m[2]), total: Number(m[3]), payload: m[4]! };
}

/** How many messages a peer may have unanswered: enough to keep messages queued at every phase of a swap. */
const WINDOW = 8;

/** A client that sends `name-0`, `name-1`, ... with a bounded window while `start()`ed. */
export class Peer {
  readonly name: string;
  readonly inbox: Inbox;
  readonly sent: string[] = [];
  #send: (data: string) => void;
  #running: Promise<void> | undefined;
  #stop = false;

  constructor(name: string, inbox: Inbox, send: (data: string) => void) {
    this.name = name;
    this.inbox = inbox;
    this.#send = send;
  }

  send(payload: string): void {
    this.sent.push(payload);
    this.#send(payload);
  }

  /** Send one message and return its reply, once every earlier one has arrived. */
  async ask(payload: string): Promise<Reply> {
    this.send(payload);
    await this.inbox.waitFor(this.sent.length, 15_000);
    return parseReply(this.inbox.messages[this.sent.length - 1]!);
  }

  start(): void {
    this.#stop = false;
    this.#running ??= this.#loop().finally(() => (this.#running = undefined));
  }

  /** Stop sending; with `drain`, also wait until every message sent has its reply. */
  async stop(drain = true): Promise<void> {
    this.#stop = true;
    await this.#running;
    if (drain) await this.inbox.waitFor(this.sent.length, 15_000);
  }

  async #loop(): Promise<void> {
    while (!this.#stop) {
      if (this.sent.length - this.inbox.messages.length < WINDOW) {
        this.send(`${this.name}-${this.sent.length}`);
        await new Promise<void>((resolve) => setImmediate(resolve));
      } else {
        // The window is full: poll the observable reply count briefly rather than spin.
        await new Promise<void>((resolve) => setTimeout(resolve, 1));
      }
    }
  }

  /**
   * Every reply arrived once, in send order, with a per-connection counter that never skipped or restarted, and
   * from an allowed version. Returns the parsed replies.
   */
  verify(allowedTags: readonly string[]): Reply[] {
    assert.equal(this.inbox.messages.length, this.sent.length, `${this.name}: replies vs sent`);
    const replies = this.inbox.messages.map(parseReply);
    replies.forEach((r, i) => {
      assert.equal(r.payload, this.sent[i], `${this.name}: reply ${i} out of order`);
      assert.equal(r.seen, i + 1, `${this.name}: per-connection counter at reply ${i}`);
      assert.ok(allowedTags.includes(r.tag), `${this.name}: reply ${i} from ${r.tag}, allowed ${allowedTags.join(',')}`);
      if (i > 0) assert.ok(r.total > replies[i - 1]!.total, `${this.name}: global counter went backwards at reply ${i}`);
    });
    return replies;
  }
}

export interface Rig {
  host: Host;
  plugin: PluginDir;
  ws: Peer;
  tcp: Peer;
  peers: Peer[];
  close(): Promise<void>;
}

/** A host serving `trafficPlugin('v1')` over ws and tcp, with one connected peer on each. */
export async function startRig(options: Partial<HostOptions> = {}, source = trafficPlugin('v1')): Promise<Rig> {
  const plugin = pluginDir(source);
  let host: Host | undefined;
  try {
    host = await createHost({
      plugin: plugin.entry,
      listen: [{ transport: 'ws' }, { transport: 'tcp' }],
      logger: quietLogger,
      probation: false,
      shutdownTimeout: 2_000,
      ...options,
    });
    const [wsAddr, tcpAddr] = host.addresses();
    const w = await wsClient(wsAddr!.url);
    const t = await tcpClient(tcpAddr!.port);
    const ws = new Peer('ws', w.inbox, (d) => w.send(d));
    const tcp = new Peer('tcp', t.inbox, (d) => t.send(d));
    const h = host;
    return {
      host: h,
      plugin,
      ws,
      tcp,
      peers: [ws, tcp],
      async close() {
        w.ws.terminate();
        t.socket.destroy();
        await h.close();
        plugin.remove();
      },
    };
  } catch (err) {
    await host?.close();
    plugin.remove();
    throw err;
  }
}

/** Run `action` while both peers send, and return its rejection (or fail if it resolved). */
export async function duringTraffic(rig: Rig, action: () => Promise<unknown>, peers = rig.peers): Promise<unknown> {
  for (const p of peers) p.start();
  // Make sure traffic is in flight before the attempt starts.
  await Promise.all(peers.map((p) => p.inbox.waitFor(p.inbox.messages.length + 16, 15_000)));
  let outcome: { ok: true } | { ok: false; err: unknown };
  try {
    await action();
    outcome = { ok: true };
  } catch (err) {
    outcome = { ok: false, err };
  }
  // Keep sending a little after the attempt: the version that serves then must still be the old one.
  await Promise.all(peers.map((p) => p.inbox.waitFor(p.inbox.messages.length + 16, 15_000)));
  await Promise.all(peers.map((p) => p.stop()));
  assert.equal(outcome.ok, false, 'the swap was expected to fail');
  return (outcome as { err: unknown }).err;
}

/** Total messages handled so far, as the plugin's global counter should see it. */
export function sentTotal(rig: Rig): number {
  return rig.peers.reduce((n, p) => n + p.sent.length, 0);
}
