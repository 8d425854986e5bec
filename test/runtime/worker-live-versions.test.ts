/**
 * issue 12 in worker isolation: several versions alive at once, each its own worker thread, over real sockets. The
 * scenarios of test/swap/live-versions.test.ts (pin, max age, canary share, automatic rollback, promotion), with what
 * a worker changes: the authoritative `conn.state` lives in the version's thread (mutated there, `conn.state.seen++`,
 * and exported when connections move), a retired version's thread is terminated, and a version that crashes while
 * others live is restored (pinned) or rolled back (canary) without touching the others.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { connect } from '../../src/client/index.js';
import { ConnectionExporter } from '../../src/handoff/connection-export.js';
import { createHost, FileSessionStore, type Handshake, type Host, type HostOptions, isHotlineError } from '../../src/index.js';
import type { WorkerVersion } from '../../src/runtime/worker-version.js';
import { type WsClient, wsClient } from '../helpers/clients.js';
import { pluginDir, type PluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';
import { until } from '../helpers/until.js';

interface Variant {
  /** Throws on 3 of every 10 messages of a connection (seen 7, 8, 9). */
  faulty?: boolean;
  /** `conn.state = {…}` instead of `conn.state.seen++`: the host's copy follows at once (what survives a crash). */
  assign?: boolean;
  /** Statements in init (a failing one: a version that fails before it takes traffic). */
  init?: string;
}

/**
 * Replies `${tag}:${seen}|${data}`. Commands: `count` (ctx.connections of the version), `bcast`, `bcast-all`,
 * `bcast-all-filter` (refused in worker mode), `exit-once` (kills the worker the first time, whatever the version).
 */
function plugin(tag: string, markers: string, v: Variant = {}): string {
  const bump = v.assign ? 'conn.state = { seen: conn.state.seen + 1 };' : 'conn.state.seen++;';
  return `
import { definePlugin } from 'hotline';
import { existsSync, writeFileSync } from 'node:fs';
const markers = ${JSON.stringify(markers)};
const once = (name: string) => {
  const f = markers + '/' + name;
  if (existsSync(f)) return false;
  writeFileSync(f, '');
  return true;
};
const realProcess = new Function('return process')() as NodeJS.Process;
export default definePlugin<{ tag: string }, { seen: number }>({
  name: 'live', version: '${tag}', api: 1,
  init: () => { ${v.init ?? ''}; return { tag: '${tag}' }; },
  migrateConnection: (prev) => ({ seen: (prev as { seen: number }).seen }),
  onOpen(conn) { conn.state = { seen: 0 }; },
  onMessage(conn, data, ctx) {
    const m = String(data);
    if (m === 'count') { conn.send('${tag}:count=' + [...ctx.connections].length); return; }
    if (m === 'bcast') { ctx.broadcast('${tag}:bcast'); return; }
    if (m === 'bcast-all') { ctx.broadcast('${tag}:bcast-all', undefined, { allVersions: true }); return; }
    if (m === 'bcast-all-filter') { ctx.broadcast('never', () => true, { allVersions: true }); return; }
    if (m === 'exit-once' && once('exit')) realProcess.exit(3);
    ${bump}
    ${v.faulty ? "if (conn.state.seen % 10 >= 7) throw new Error('faulty ${tag}');" : ''}
    conn.send('${tag}:' + conn.state.seen + '|' + m);
  },
  dispose() { writeFileSync(markers + '/${tag}.disposed', ''); },
});
`;
}

interface Rig {
  host: Host;
  p: PluginDir;
  markers: string;
  disposed(tag: string): boolean;
  close(): Promise<void>;
}

async function start(v: Variant = {}, options: Partial<HostOptions> = {}): Promise<Rig> {
  const markers = mkdtempSync(path.join(tmpdir(), 'hotline-wlive-'));
  const p = pluginDir(plugin('v1', markers, v));
  const host = await createHost({
    plugin: p.entry,
    listen: [{ transport: 'ws', host: '127.0.0.1', port: 0 }],
    isolation: 'worker',
    logger: quietLogger,
    probation: false,
    hookTimeout: 5_000,
    settleTimeout: 5_000,
    ...options,
  });
  return {
    host,
    p,
    markers,
    disposed: (tag) => existsSync(path.join(markers, `${tag}.disposed`)),
    close: async () => {
      await host.close();
      p.remove();
      rmSync(markers, { recursive: true, force: true });
    },
  };
}

function current(host: Host): WorkerVersion {
  return host.handoffPort().current() as WorkerVersion;
}

async function connectMany(host: Host, n: number): Promise<WsClient[]> {
  const url = host.addresses()[0]!.url;
  const out: WsClient[] = [];
  for (let i = 0; i < n; i += 50) out.push(...(await Promise.all(Array.from({ length: Math.min(50, n - i) }, () => wsClient(url)))));
  return out;
}

/** Each client sends `from..to` (numbers); resolves once every reply is in. */
async function stream(clients: WsClient[], from: number, to: number): Promise<void> {
  for (const c of clients) for (let i = from; i <= to; i++) c.send(String(i));
  await Promise.all(clients.map((c) => c.inbox.waitFor(to, 30_000)));
}

/** The replies of one client are `${tag}:${i}|${i}` for i = from..to, in order: none lost, duplicated or reordered. */
function assertReplies(c: WsClient, tag: string, from: number, to: number): void {
  const got = c.inbox.messages.slice(from - 1, to);
  const want = Array.from({ length: to - from + 1 }, (_, k) => `${tag}:${from + k}|${from + k}`);
  assert.deepEqual(got, want);
}

test('worker pin: v1 connections stay on v1 through the swap, new ones get v2, 0 lost; v1 disposed and its thread terminated after its last connection', async () => {
  const r = await start();
  try {
    const old = await connectMany(r.host, 100);
    await stream(old, 1, 5);
    const v1 = current(r.host);
    r.p.write(plugin('v2', r.markers));
    // The old connections keep streaming while the pinned swap runs.
    const during = stream(old, 6, 20);
    const record = await r.host.reload('reload', { policy: 'pin' });
    assert.equal(record.outcome, 'pinned');
    assert.notEqual(current(r.host), v1, 'v2 is the default');
    const fresh = await connectMany(r.host, 100);
    await Promise.all([during, stream(fresh, 1, 5)]);
    await Promise.all([stream(old, 21, 25), stream(fresh, 6, 10)]);
    for (const c of old) assertReplies(c, 'v1', 1, 25);
    for (const c of fresh) assertReplies(c, 'v2', 1, 10);
    const live = r.host.status().live;
    assert.deepEqual(live.map((l) => [l.label, l.role, l.connections]), [['live@v1', 'pinned', 100], ['live@v2', 'default', 100]]);
    assert.ok(live.every((l) => l.p99Ms !== undefined), 'each worker version reports a handler p99');
    assert.equal(r.disposed('v1'), false, 'v1 is not disposed while it has connections');
    assert.equal(v1.threadExited, false);

    for (const c of old) c.ws.close();
    await until(() => r.disposed('v1'), "v1's dispose after its last connection", 20_000);
    await until(() => v1.threadExited, "v1's worker thread terminated", 20_000);
    assert.equal(v1.retired, true);
    assert.deepEqual(r.host.status().live.map((l) => l.label), ['live@v2']);
    await stream(fresh, 11, 12);
    for (const c of fresh) assertReplies(c, 'v2', 1, 12);
    for (const c of fresh) c.ws.close();
  } finally {
    await r.close();
  }
});

test('worker pin with a max age: the connections still on v1 migrate to v2 with the state v1 held in its thread, 0 lost', async () => {
  const r = await start();
  try {
    const old = await connectMany(r.host, 10);
    await stream(old, 1, 3);
    const v1 = current(r.host);
    r.p.write(plugin('v2', r.markers));
    await r.host.reload('reload', { policy: { pin: true, maxAge: 300 } });
    // Mutated in v1's thread (conn.state.seen++) after the pin: what moves is exported at the max age.
    await stream(old, 4, 6);
    // The record is written after v1's dispose has run in its thread.
    await until(() => r.host.status().swaps.at(-1)?.outcome === 'retired', 'v1 retired at its max age', 20_000);
    assert.equal(r.host.status().live.length, 1);
    await until(() => v1.threadExited && r.disposed('v1'), "v1's dispose and thread exit", 20_000);
    await stream(old, 7, 9);
    for (const c of old) {
      assertReplies(c, 'v1', 1, 6);
      assertReplies(c, 'v2', 7, 9);
    }
    assert.equal(r.host.status().live[0]!.connections, 10);
    for (const c of old) c.ws.close();
  } finally {
    await r.close();
  }
});

test('worker canary: about 20% of 500 new connections; a v2 throwing on 30% is rolled back (HOTLINE_E_CANARY), its connections go on on v1 with their state, 0 closed', async () => {
  const r = await start();
  try {
    r.p.write(plugin('v2', r.markers, { faulty: true }));
    const record = await r.host.reload('reload', { policy: { canary: 0.2, window: 600_000 } });
    assert.equal(record.outcome, 'canary');
    const clients = await connectMany(r.host, 500);
    await stream(clients, 1, 1);
    const onCanary = clients.filter((c) => c.inbox.messages[0]!.startsWith('v2:'));
    // Binomial(500, 0.2): mean 100, sigma sqrt(500 * 0.2 * 0.8) = 8.9; 4 sigma is 36, false failure about 6e-5.
    assert.ok(onCanary.length >= 64 && onCanary.length <= 136, `${onCanary.length} of 500 on the canary`);
    assert.ok(clients.filter((c) => c.inbox.messages[0]!.startsWith('v1:')).length === 500 - onCanary.length);
    for (const c of onCanary) for (let i = 2; i <= 12; i++) c.send(String(i));
    await until(() => r.host.status().swaps.at(-1)?.outcome === 'rolled-back', 'the canary rolled back', 30_000);
    assert.equal(r.host.status().swaps.at(-1)!.error?.code, 'HOTLINE_E_CANARY');
    assert.deepEqual(r.host.status().live.map((l) => [l.label, l.connections]), [['live@v1', 500]]);
    await until(() => r.disposed('v2'), "the canary's dispose", 20_000);
    // 12 messages seen in the canary's thread (or in v1's after the rollback), so the next is the 13th.
    for (const c of onCanary) c.send('x');
    await until(() => onCanary.every((c) => c.inbox.messages.some((m) => m.endsWith('|x'))), 'replies after the rollback', 30_000);
    for (const c of onCanary) assert.equal(c.inbox.messages.find((m) => m.endsWith('|x')), 'v1:13|x');
    assert.ok(clients.every((k) => k.ws.readyState === k.ws.OPEN), '0 connections closed');
    for (const k of clients) k.ws.close();
  } finally {
    await r.close();
  }
});

test('worker canary: a healthy v2 is promoted after its window; every connection then runs v2 with its state, the stable thread terminated', async () => {
  const r = await start();
  try {
    const old = await connectMany(r.host, 5);
    await stream(old, 1, 2);
    const v1 = current(r.host);
    r.p.write(plugin('v2', r.markers));
    await r.host.reload('reload', { policy: { canary: 0.5, window: 300 } });
    const fresh = await connectMany(r.host, 20);
    await stream(fresh, 1, 2);
    await until(() => r.host.status().swaps.at(-1)?.outcome === 'promoted', 'the canary promoted', 20_000);
    assert.deepEqual(r.host.status().live.map((l) => [l.label, l.role, l.connections]), [['live@v2', 'default', 25]]);
    await until(() => v1.threadExited, "the stable version's thread terminated", 20_000);
    await stream([...old, ...fresh], 3, 3);
    for (const c of old) assertReplies(c, 'v2', 3, 3);
    for (const c of fresh) assertReplies(c, 'v2', 3, 3);
    for (const c of [...old, ...fresh]) c.ws.close();
  } finally {
    await r.close();
  }
});

test('worker canary by predicate: the handshake picks the canary; manual promote waits for the command', async () => {
  const r = await start();
  try {
    r.p.write(plugin('v2', r.markers));
    await r.host.reload('reload', { policy: { canary: 1, match: (h: Handshake) => h.url.includes('beta=1'), window: 50, promote: 'manual' } });
    const url = r.host.addresses()[0]!.url;
    const beta = await Promise.all(Array.from({ length: 5 }, () => wsClient(`${url}/?beta=1`)));
    const plain = await Promise.all(Array.from({ length: 5 }, () => wsClient(url)));
    await stream([...beta, ...plain], 1, 1);
    for (const c of beta) assertReplies(c, 'v2', 1, 1);
    for (const c of plain) assertReplies(c, 'v1', 1, 1);
    await until(() => r.host.status().live.find((l) => l.role === 'canary') !== undefined && r.host.status().live.length === 2, 'both live');
    // Past the window: still two live versions until promote.
    const promoted = await r.host.promote();
    assert.equal(promoted.outcome, 'promoted');
    await stream([...beta, ...plain], 2, 2);
    for (const c of [...beta, ...plain]) assertReplies(c, 'v2', 2, 2);
    for (const c of [...beta, ...plain]) c.ws.close();
  } finally {
    await r.close();
  }
});

test("worker pin: ctx.connections and broadcast are the version's own; allVersions reaches all; a filter with allVersions is refused by code", async () => {
  const r = await start();
  const errors: string[] = [];
  r.host.on('handler-error', (err) => errors.push(err.code));
  try {
    const old = await connectMany(r.host, 3);
    await stream(old, 1, 1);
    r.p.write(plugin('v2', r.markers));
    await r.host.reload('reload', { policy: 'pin' });
    const fresh = await connectMany(r.host, 2);
    await stream(fresh, 1, 1);

    old[0]!.send('count');
    fresh[0]!.send('count');
    await until(() => old[0]!.inbox.messages.length === 2 && fresh[0]!.inbox.messages.length === 2, 'counts');
    assert.equal(old[0]!.inbox.messages[1], 'v1:count=3');
    assert.equal(fresh[0]!.inbox.messages[1], 'v2:count=2');

    fresh[0]!.send('bcast');
    await until(() => fresh.every((c) => c.inbox.messages.includes('v2:bcast')), 'the v2 broadcast reaches v2');
    fresh[0]!.send('bcast-all');
    await until(() => [...old, ...fresh].every((c) => c.inbox.messages.includes('v2:bcast-all')), 'allVersions reaches everyone');
    assert.ok(old.every((c) => !c.inbox.messages.includes('v2:bcast')), 'the scoped broadcast never reached a v1 client');

    fresh[1]!.send('bcast-all-filter');
    await until(() => errors.includes('HOTLINE_E_BROADCAST_WORKER'), 'the refusal, counted as a handler error');
    assert.ok([...old, ...fresh].every((c) => !c.inbox.messages.includes('never')));
    for (const c of [...old, ...fresh]) c.ws.close();
  } finally {
    await r.close();
  }
});

test('worker pin: a session client resumes on its pinned version while it lives, then on the current one with its state after a promote', async () => {
  const r = await start({}, { sessions: true });
  // A TCP proxy between the client and the host: destroying its sockets cuts the client off as a network would.
  const upstream = Number(new URL(r.host.addresses()[0]!.url).port);
  const links = new Set<net.Socket>();
  const proxy = net.createServer((down) => {
    const up = net.connect(upstream, '127.0.0.1');
    links.add(down).add(up);
    down.pipe(up).pipe(down);
    const drop = () => (down.destroy(), up.destroy(), links.delete(down), links.delete(up));
    down.on('error', drop).on('close', drop);
    up.on('error', drop).on('close', drop);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const port = (proxy.address() as net.AddressInfo).port;
  const client = connect(`ws://127.0.0.1:${port}/`, { backoff: { initialDelay: 20, maxDelay: 200 } });
  const got: string[] = [];
  let resumed = 0;
  client.on('message', (d) => got.push(String(d)));
  client.on('resumed', () => resumed++);
  const cut = async () => {
    const before = resumed;
    for (const s of links) s.destroy();
    await until(() => resumed > before, 'the session resumed', 20_000);
  };
  try {
    client.send('a');
    await until(() => got.includes('v1:1|a'), 'served by v1');
    r.p.write(plugin('v2', r.markers));
    await r.host.reload('reload', { policy: 'pin' });
    await cut();
    client.send('b');
    await until(() => got.includes('v1:2|b'), 'resumed on its pinned v1, state kept', 20_000);
    assert.deepEqual(r.host.status().live.map((l) => [l.label, l.connections]), [['live@v1', 1], ['live@v2', 0]]);
    await r.host.promote();
    await cut();
    client.send('c');
    await until(() => got.includes('v2:3|c'), 'v1 is gone: resumed on v2 with its state', 20_000);
    assert.deepEqual(got, ['v1:1|a', 'v1:2|b', 'v2:3|c']);
  } finally {
    client.close();
    proxy.close();
    await r.close();
  }
});

test('worker canary that crashes: rolled back at once (HOTLINE_E_CANARY), its connections on v1 with their state, the message in flight answered by v1, 0 closed', async () => {
  const r = await start({ assign: true });
  try {
    const stable = await connectMany(r.host, 5);
    r.p.write(plugin('v2', r.markers, { assign: true }));
    await r.host.reload('reload', { policy: { canary: 1, window: 600_000 } });
    const canary = await connectMany(r.host, 5);
    await stream(canary, 1, 3);
    for (const c of canary) assertReplies(c, 'v2', 1, 3);
    canary[0]!.send('exit-once');
    await until(() => r.host.status().swaps.at(-1)?.outcome === 'rolled-back', 'the crashed canary rolled back', 30_000);
    const rec = r.host.status().swaps.at(-1)!;
    assert.equal(rec.error?.code, 'HOTLINE_E_CANARY');
    assert.match(rec.error!.message, /HOTLINE_E_VERSION_CRASHED/);
    await until(() => canary[0]!.inbox.messages.length === 4, 'the message in flight at the crash, replayed on v1', 20_000);
    assert.equal(canary[0]!.inbox.messages[3], 'v1:4|exit-once');
    await stream(canary.slice(1), 4, 4);
    for (const c of canary.slice(1)) assertReplies(c, 'v1', 4, 4);
    await stream(stable, 1, 1);
    for (const c of stable) assertReplies(c, 'v1', 1, 1);
    assert.deepEqual(r.host.status().live.map((l) => [l.label, l.connections]), [['live@v1', 10]]);
    assert.ok([...stable, ...canary].every((c) => c.ws.readyState === c.ws.OPEN), '0 closed');
    for (const c of [...stable, ...canary]) c.ws.close();
  } finally {
    await r.close();
  }
});

test('worker pin: a pinned v1 that crashes is restored as v1 from its own build, still pinned with its connections; v2 untouched', async () => {
  const r = await start({ assign: true });
  try {
    const old = await connectMany(r.host, 4);
    await stream(old, 1, 2);
    r.p.write(plugin('v2', r.markers, { assign: true }));
    await r.host.reload('reload', { policy: 'pin' });
    const fresh = await connectMany(r.host, 3);
    await stream(fresh, 1, 2);
    const v2 = current(r.host);
    old[0]!.send('exit-once');
    await until(() => r.host.status().swaps.some((s) => s.trigger === 'restore' && s.outcome === 'restored'), 'v1 restored', 30_000);
    await until(() => old[0]!.inbox.messages.length === 3, 'the message in flight replayed on the restored v1', 20_000);
    assert.equal(old[0]!.inbox.messages[2], 'v1:3|exit-once');
    assert.equal(current(r.host), v2, 'v2 stays the default, in the same thread');
    assert.deepEqual(r.host.status().live.map((l) => [l.label, l.role, l.connections]), [['live@v1', 'pinned', 4], ['live@v2', 'default', 3]]);
    await stream(old.slice(1), 3, 3);
    for (const c of old.slice(1)) assertReplies(c, 'v1', 1, 3);
    await stream(fresh, 3, 3);
    for (const c of fresh) assertReplies(c, 'v2', 1, 3);
    for (const c of old) c.ws.close();
    await until(() => r.host.status().live.length === 1, 'the restored v1 retires after its last connection', 20_000);
    for (const c of fresh) c.ws.close();
  } finally {
    await r.close();
  }
});

test('worker pin and canary: a version that fails before it takes traffic leaves everything as it was', async () => {
  const r = await start();
  try {
    const old = await connectMany(r.host, 3);
    await stream(old, 1, 1);
    const v1 = current(r.host);
    r.p.write(plugin('v2', r.markers, { init: "throw new Error('no v2 today')" }));
    await assert.rejects(r.host.reload('reload', { policy: 'pin' }), (e: { code?: string }) => e.code === 'HOTLINE_E_INIT');
    await assert.rejects(r.host.reload('reload', { policy: { canary: 0.5 } }), (e: { code?: string }) => e.code === 'HOTLINE_E_INIT');
    assert.equal(current(r.host), v1);
    assert.deepEqual(r.host.status().live.map((l) => [l.label, l.role, l.connections]), [['live@v1', 'default', 3]]);
    const fresh = await connectMany(r.host, 2);
    await Promise.all([stream(old, 2, 2), stream(fresh, 1, 1)]);
    for (const c of old) assertReplies(c, 'v1', 1, 2);
    for (const c of fresh) assertReplies(c, 'v1', 1, 1);
    for (const c of [...old, ...fresh]) c.ws.close();
  } finally {
    await r.close();
  }
});

test('worker mode: a session restored from the store in another host (no onOpen there) is served by its version with its state', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'hotline-wlive-store-'));
  const a = await start({ assign: true }, { sessions: { store: new FileSessionStore(dir) } });
  let upstream = Number(new URL(a.host.addresses()[0]!.url).port);
  const links = new Set<net.Socket>();
  const proxy = net.createServer((down) => {
    const up = net.connect(upstream, '127.0.0.1');
    links.add(down).add(up);
    down.pipe(up).pipe(down);
    const drop = () => (down.destroy(), up.destroy(), links.delete(down), links.delete(up));
    down.on('error', drop).on('close', drop);
    up.on('error', drop).on('close', drop);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const client = connect(`ws://127.0.0.1:${(proxy.address() as net.AddressInfo).port}/`, { backoff: { initialDelay: 20, maxDelay: 200 } });
  const got: string[] = [];
  let resumed = 0;
  client.on('message', (d) => got.push(String(d)));
  client.on('resumed', () => resumed++);
  let b: Rig | undefined;
  try {
    client.send('a');
    client.send('b');
    await until(() => got.includes('v1:2|b'), 'served by the first host');
    await a.close();
    b = await start({ assign: true }, { sessions: { store: new FileSessionStore(dir) } });
    upstream = Number(new URL(b.host.addresses()[0]!.url).port);
    await until(() => resumed === 1, 'the session resumed in the second host', 20_000);
    client.send('c');
    await until(() => got.includes('v1:3|c'), 'served with its state by the second host', 20_000);
    assert.deepEqual(got, ['v1:1|a', 'v1:2|b', 'v1:3|c']);
  } finally {
    client.close();
    proxy.close();
    await b?.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('worker mode: a process upgrade with two live versions is refused by code, and leaves the lock and dispatch as they were', async () => {
  const r = await start();
  try {
    const old = await connectMany(r.host, 2);
    await stream(old, 1, 1);
    r.p.write(plugin('v2', r.markers));
    await r.host.reload('reload', { policy: 'pin' });
    const port = r.host.handoffPort();
    await assert.rejects(new ConnectionExporter(port).export({ send: () => undefined }, 1_000), (err: unknown) => isHotlineError(err, 'HOTLINE_E_UPGRADE_VERSIONS'));
    assert.equal(port.lock.holder, undefined);
    assert.equal(port.dispatcher.suspended, false);
    await stream(old, 2, 2);
    for (const c of old) assertReplies(c, 'v1', 1, 2);
    for (const c of old) c.ws.close();
  } finally {
    await r.close();
  }
});

test('worker canary: the stable version crashing is restored with its own connections; the canary keeps its own, and a rollback then goes to the restored stable', async () => {
  const r = await start({ assign: true });
  try {
    const stable = await connectMany(r.host, 3);
    await stream(stable, 1, 2);
    r.p.write(plugin('v2', r.markers, { assign: true }));
    await r.host.reload('reload', { policy: { canary: 1, window: 600_000 } });
    const canary = await connectMany(r.host, 3);
    await stream(canary, 1, 2);
    stable[0]!.send('exit-once');
    await until(() => r.host.status().swaps.some((s) => s.trigger === 'restore' && s.outcome === 'restored'), 'the stable version restored', 30_000);
    await until(() => stable[0]!.inbox.messages.length === 3, 'its message in flight replayed', 20_000);
    assert.equal(stable[0]!.inbox.messages[2], 'v1:3|exit-once');
    assert.deepEqual(r.host.status().live.map((l) => [l.label, l.role, l.connections]), [['live@v1', 'default', 3], ['live@v2', 'canary', 3]]);
    await stream(canary, 3, 3);
    for (const c of canary) assertReplies(c, 'v2', 1, 3);
    const back = await r.host.rollback();
    assert.equal(back.outcome, 'rolled-back');
    await stream(canary, 4, 4);
    for (const c of canary) assertReplies(c, 'v1', 4, 4);
    await stream(stable.slice(1), 3, 3);
    for (const c of stable.slice(1)) assertReplies(c, 'v1', 1, 3);
    assert.ok([...stable, ...canary].every((c) => c.ws.readyState === c.ws.OPEN), '0 closed');
    for (const c of [...stable, ...canary]) c.ws.close();
  } finally {
    await r.close();
  }
});
