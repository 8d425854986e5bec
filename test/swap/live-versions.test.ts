/**
 * issue 12: several versions alive at once, over real sockets: pinning (old connections finish on v1, new ones get
 * v2, v1 disposed and collected after its last connection), a max age that migrates the rest with their state, and
 * a canary (its share of new connections, an automatic rollback over its error budget, a promotion after its window).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConnectionExporter } from '../../src/handoff/connection-export.js';
import { createHost, type Handshake, type Host, isHotlineError } from '../../src/index.js';
import { type WsClient, until, wsClient } from '../helpers/clients.js';
import { collectUntil } from '../helpers/heap.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';

const KEY = 'hotline-test-live-versions';
const g = globalThis as unknown as Record<symbol, Record<string, WeakRef<object> | boolean> | undefined>;

/** Replies `${tag}:${seen}|${data}`; `faulty`: throws on 3 of every 10 messages of a connection. */
function plugin(tag: string, faulty = false): string {
  return `
import { definePlugin } from 'hotline';
const g = globalThis as any;
const mod = { tag: '${tag}' };
(g[Symbol.for('${KEY}')] ??= {})['${tag}'] = new WeakRef(mod);
export default definePlugin<{ mod: object }, { seen: number }>({
  name: 'live', version: '${tag}', api: 1,
  init: () => ({ mod }),
  migrateConnection: (prev) => ({ seen: (prev as { seen: number }).seen }),
  onOpen(conn) { conn.state = { seen: 0 }; },
  onMessage(conn, data) {
    conn.state.seen++;
    ${faulty ? "if (conn.state.seen % 10 >= 7) throw new Error('faulty ${tag}');" : ''}
    conn.send('${tag}:' + conn.state.seen + '|' + data);
  },
  dispose() { g[Symbol.for('${KEY}')]['${tag}.disposed'] = true; },
});
`;
}

async function connect(host: Host, n: number): Promise<WsClient[]> {
  const url = host.addresses()[0]!.url;
  const out: WsClient[] = [];
  for (let i = 0; i < n; i += 50) out.push(...(await Promise.all(Array.from({ length: Math.min(50, n - i) }, () => wsClient(url)))));
  return out;
}

/** Each client sends `from..to`; resolves once every reply is in. */
async function stream(clients: WsClient[], from: number, to: number): Promise<void> {
  for (const c of clients) for (let i = from; i <= to; i++) c.send(String(i));
  await Promise.all(clients.map((c) => c.inbox.waitFor(to)));
}

/** The replies of one client are `${tag}:${i}|${i}` for i = from..to, in order: none lost, duplicated or reordered. */
function assertReplies(c: WsClient, tag: string, from: number, to: number): void {
  const got = c.inbox.messages.slice(from - 1, to);
  const want = Array.from({ length: to - from + 1 }, (_, k) => `${tag}:${from + k}|${from + k}`);
  assert.deepEqual(got, want);
}

async function start(source: string) {
  const p = pluginDir(source);
  const host = await createHost({ plugin: p.entry, listen: [{ transport: 'ws' }], logger: quietLogger, probation: false });
  return { p, host };
}

test('pin: v1 connections stay on v1, new ones get v2, 0 lost; v1 disposed and collected after its last connection', async () => {
  delete g[Symbol.for(KEY)];
  const { p, host } = await start(plugin('v1'));
  try {
    const old = await connect(host, 100);
    await stream(old, 1, 5);
    p.write(plugin('v2'));
    const record = await host.reload('reload', { policy: 'pin' });
    assert.equal(record.outcome, 'pinned');
    const fresh = await connect(host, 100);
    await Promise.all([stream(old, 6, 10), stream(fresh, 1, 5)]);
    for (const c of old) assertReplies(c, 'v1', 1, 10);
    for (const c of fresh) assertReplies(c, 'v2', 1, 5);
    const live = host.status().live;
    assert.deepEqual(live.map((l) => [l.label, l.role, l.connections]), [['live@v1', 'pinned', 100], ['live@v2', 'default', 100]]);
    assert.equal(g[Symbol.for(KEY)]!['v1.disposed'], undefined, 'v1 is not disposed while it has connections');

    for (const c of old) c.ws.close();
    await until(() => g[Symbol.for(KEY)]!['v1.disposed'] === true, 'v1 dispose after its last connection');
    assert.deepEqual(host.status().live.map((l) => l.label), ['live@v2']);
    const ref = g[Symbol.for(KEY)]!['v1'] as WeakRef<object>;
    assert.ok(await collectUntil(() => ref.deref() === undefined), 'the module of v1 is collected');
    await stream(fresh, 6, 7);
    for (const c of fresh) assertReplies(c, 'v2', 1, 7);
    for (const c of fresh) c.ws.close();
  } finally {
    await host.close();
    p.remove();
  }
});

test('pin with a max age: the connections still on v1 migrate to v2 with their state, 0 lost', async () => {
  const { p, host } = await start(plugin('v1'));
  try {
    const old = await connect(host, 10);
    await stream(old, 1, 3);
    p.write(plugin('v2'));
    await host.reload('reload', { policy: { pin: true, maxAge: 100 } });
    await until(() => host.status().live.length === 1, 'v1 retired at its max age');
    assert.equal(host.status().swaps.at(-1)!.outcome, 'retired');
    await stream(old, 4, 6);
    for (const c of old) {
      assertReplies(c, 'v1', 1, 3);
      assertReplies(c, 'v2', 4, 6);
    }
    for (const c of old) c.ws.close();
  } finally {
    await host.close();
    p.remove();
  }
});

test('canary: about 20% of 500 new connections; a v2 throwing on 30% is rolled back (HOTLINE_E_CANARY), 0 closed', async () => {
  const { p, host } = await start(plugin('v1'));
  try {
    p.write(plugin('v2', true));
    const record = await host.reload('reload', { policy: { canary: 0.2, window: 600_000 } });
    assert.equal(record.outcome, 'canary');
    const clients = await connect(host, 500);
    await stream(clients, 1, 1);
    // Message 1 of each is answered by both (the faulty one throws at seen 7, 8, 9 of every 10).
    const onCanary = clients.filter((c) => c.inbox.messages[0]!.startsWith('v2:'));
    // Binomial(500, 0.2): mean 100, sigma sqrt(500 * 0.2 * 0.8) = 8.9; 4 sigma is 36, false failure about 6e-5.
    assert.ok(onCanary.length >= 64 && onCanary.length <= 136, `${onCanary.length} of 500 on the canary`);
    // 3 of the next 11 messages of each canary connection throw: far over the budget (stable +5%).
    for (const c of onCanary) for (let i = 2; i <= 12; i++) c.send(String(i));
    await until(() => host.status().swaps.at(-1)?.outcome === 'rolled-back', 'the canary rolled back');
    const last = host.status().swaps.at(-1)!;
    assert.equal(last.error?.code, 'HOTLINE_E_CANARY');
    assert.deepEqual(host.status().live.map((l) => [l.label, l.connections]), [['live@v1', 500]]);
    // The canary's connections go on, on v1, from the state they had: 12 messages seen, so the next is the 13th.
    for (const c of onCanary) c.send('x');
    await until(() => onCanary.every((c) => c.inbox.messages.some((m) => m.endsWith('|x'))), 'replies after the rollback');
    for (const c of onCanary) assert.equal(c.inbox.messages.find((m) => m.endsWith('|x')), 'v1:13|x');
    assert.ok(clients.every((k) => k.ws.readyState === k.ws.OPEN), '0 connections closed');
    for (const k of clients) k.ws.close();
  } finally {
    await host.close();
    p.remove();
  }
});

test('canary: a healthy v2 is promoted after its window; every connection then runs v2 with its state', async () => {
  const { p, host } = await start(plugin('v1'));
  try {
    const old = await connect(host, 5);
    await stream(old, 1, 2);
    p.write(plugin('v2'));
    await host.reload('reload', { policy: { canary: 0.5, window: 200 } });
    const fresh = await connect(host, 10);
    await stream(fresh, 1, 2);
    await until(() => host.status().swaps.at(-1)?.outcome === 'promoted', 'the canary promoted');
    assert.deepEqual(host.status().live.map((l) => [l.label, l.role, l.connections]), [['live@v2', 'default', 15]]);
    await stream(old, 3, 3);
    for (const c of old) assertReplies(c, 'v2', 3, 3);
    for (const c of [...old, ...fresh]) c.ws.close();
  } finally {
    await host.close();
    p.remove();
  }
});

test('canary by predicate: the upgrade request picks the canary (url, headers); a throwing predicate sends to stable', async () => {
  const { p, host } = await start(plugin('v1'));
  try {
    p.write(plugin('v2'));
    await host.reload('reload', {
      policy: {
        canary: 1,
        window: 600_000,
        match: (h: Handshake) => {
          if (h.headers['x-boom'] !== undefined) throw new Error('predicate bug');
          return h.url.includes('beta=1') || h.headers['x-canary'] === 'yes';
        },
      },
    });
    const url = host.addresses()[0]!.url;
    const byQuery = await wsClient(`${url}/?beta=1`);
    const byHeader = await wsClient(url, { headers: { 'x-canary': 'yes' } });
    const plain = await wsClient(url);
    const boom = await wsClient(url, { headers: { 'x-boom': '1', 'x-canary': 'yes' } });
    await stream([byQuery, byHeader, plain, boom], 1, 1);
    assert.deepEqual([byQuery, byHeader, plain, boom].map((c) => c.inbox.messages[0]), ['v2:1|1', 'v2:1|1', 'v1:1|1', 'v1:1|1']);
    for (const c of [byQuery, byHeader, plain, boom]) c.ws.close();
  } finally {
    await host.close();
    p.remove();
  }
});

test('policies are validated with a code', async () => {
  const { p, host } = await start(plugin('v1'));
  try {
    for (const bad of [{ canary: 0 }, { canary: 2 }, { pin: true, maxAge: -1 }, { canary: 0.1, extra: 1 }, 'sideways']) {
      await assert.rejects(host.reload('reload', { policy: bad as never }), (e: { code?: string }) => e.code === 'HOTLINE_E_POLICY');
    }
    await assert.rejects(host.promote(), (e: { code?: string }) => e.code === 'HOTLINE_E_NOTHING_TO_PROMOTE');
  } finally {
    await host.close();
    p.remove();
  }
});

test('a process upgrade with two live versions is refused by code, and leaves the lock and dispatch as they were', async () => {
  const { p, host } = await start(plugin('v1'));
  try {
    const old = await connect(host, 2);
    await stream(old, 1, 1);
    p.write(plugin('v2'));
    await host.reload('reload', { policy: 'pin' });
    const port = host.handoffPort();
    const exporter = new ConnectionExporter(port);
    await assert.rejects(exporter.export({ send: () => undefined }, 1_000), (err: unknown) => isHotlineError(err, 'HOTLINE_E_UPGRADE_VERSIONS'));
    assert.equal(port.lock.holder, undefined);
    assert.equal(port.dispatcher.suspended, false);
    await stream(old, 2, 2);
    for (const c of old) assertReplies(c, 'v1', 1, 2);
    for (const c of old) c.ws.close();
  } finally {
    await host.close();
    p.remove();
  }
});
