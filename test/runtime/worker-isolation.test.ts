/**
 * Worker isolation (issue 11): real worker threads, real WebSockets. One test per failure a worker-mode version can
 * have. Each asserts that the host survives, that no connection closed (except a poison message's sender), that an
 * unrelated client's longest gap between replies stays within hangTimeout plus a generous bound (never an absolute
 * small timing), the coded error in status and history, and which version serves afterwards.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { connect } from '../../src/client/index.js';
import { createHost, type Host } from '../../src/index.js';
import { type WsClient, wsClient } from '../helpers/clients.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';
import { until } from '../helpers/until.js';

const HANG_TIMEOUT = 300;
/** Detection (≤ 1.25 × hangTimeout), a worker start (~70-300 ms under tsx), replay: generous on 2 noisy cores. */
const GAP_BOUND = HANG_TIMEOUT + 4_000;

/** `once(tag)` is true the first time per marker file: a fault that strikes once, then lets the replay through. */
const PLUGIN = (tag: string, markers: string, extra = '') => `
import { definePlugin } from 'hotline';
import { existsSync, writeFileSync } from 'node:fs';
const once = (name: string) => {
  const f = ${JSON.stringify(markers)} + '/' + name;
  if (existsSync(f)) return false;
  writeFileSync(f, '');
  return true;
};
// Reaching the real globals, past the version's tracked views: what an npm package's own timer would do.
const realSetTimeout = new Function('return setTimeout')() as typeof setTimeout;
const realProcess = new Function('return process')() as NodeJS.Process;
export default definePlugin<{ total: number }>({
  name: 'iso', version: '${tag}', api: 1,
  init: () => ({ total: 0 }),
  migrate: (prev) => ({ total: (prev.state as { total: number }).total }),
  async onMessage(conn, data, ctx) {
    const m = String(data);
    if (m === 'spin-once' && once('spin')) for (;;) {}
    if (m === 'spin') for (;;) {}
    if (m === 'never-once' && once('never')) await new Promise(() => undefined);
    if (m === 'timer-throw') realSetTimeout(() => { throw new Error('boom in a real timer'); }, 1);
    if (m === 'exit-once' && once('exit')) realProcess.exit(3);
    if (m === 'oom-once' && once('oom')) { const keep: unknown[] = []; for (;;) keep.push(new Array(100_000).fill(keep.length)); }
    ctx.state.total++;
    conn.send('${tag}:' + ctx.state.total + ':' + m);
  },
  ${extra}
});
`;

interface Rig {
  host: Host;
  bystander: WsClient;
  culprit: WsClient;
  markers: string;
  /** Stop the bystander's ping-pong; returns its longest gap between replies, in ms, and its reply count. */
  stopPinging(): Promise<{ longestGap: number; replies: number }>;
  close(): Promise<void>;
  p: ReturnType<typeof pluginDir>;
}

async function rig(options: Record<string, unknown> = {}, extra = ''): Promise<Rig> {
  const markers = mkdtempSync(path.join(tmpdir(), 'hotline-iso-'));
  const p = pluginDir(PLUGIN('v1', markers, extra));
  const host = await createHost({
    plugin: p.entry,
    listen: [{ transport: 'ws', host: '127.0.0.1', port: 0 }],
    isolation: 'worker',
    hangTimeout: HANG_TIMEOUT,
    hookTimeout: 3_000,
    settleTimeout: 3_000,
    logger: quietLogger,
    probation: false,
    ...options,
  });
  const url = host.addresses()[0]!.url;
  const bystander = await wsClient(url);
  const culprit = await wsClient(url);
  let pinging = true;
  let last = performance.now();
  let longestGap = 0;
  let replies = 0;
  const loop = (async () => {
    for (let i = 0; pinging; i++) {
      bystander.send(`ping-${i}`);
      await bystander.inbox.waitFor(i + 1, 30_000);
      const now = performance.now();
      longestGap = Math.max(longestGap, now - last);
      last = now;
      replies++;
    }
  })();
  await until(() => replies >= 3, 'the bystander is served');
  return {
    host,
    bystander,
    culprit,
    markers,
    p,
    stopPinging: async () => {
      pinging = false;
      await loop;
      return { longestGap, replies };
    },
    close: async () => {
      pinging = false;
      await loop.catch(() => undefined);
      bystander.ws.close();
      culprit.ws.close();
      await host.close();
      p.remove();
    },
  };
}

const restores = (host: Host) => host.status().swaps.filter((s) => s.trigger === 'restore');

async function assertContained(r: Rig, code: string, serving: string): Promise<void> {
  await until(() => restores(r.host).some((s) => s.outcome === 'restored'), `a restore after ${code}`, 20_000);
  const { longestGap } = await r.stopPinging();
  const rec = restores(r.host).at(-1)!;
  assert.equal(rec.error?.code, code, 'the failure is in the swap history, coded');
  assert.equal(rec.outcome, 'restored');
  const st = r.host.status();
  assert.equal(st.state, 'running', 'the host survives');
  assert.equal(st.isolation, 'worker');
  assert.equal(st.plugin?.version, serving);
  assert.ok(st.versions.some((v) => v.lastError?.code === code), 'the failed version shows the code in status');
  assert.equal(st.connections, 2, 'no connection closed');
  assert.equal(r.bystander.ws.readyState, r.bystander.ws.OPEN);
  assert.equal(r.culprit.ws.readyState, r.culprit.ws.OPEN);
  assert.ok(longestGap < GAP_BOUND, `the bystander's longest gap ${Math.round(longestGap)} ms is within hangTimeout + ${GAP_BOUND - HANG_TIMEOUT} ms`);
}

test('worker mode: a sync busy loop in onMessage is terminated; v1 restarts from its checkpoint; the hung message and the next are answered, in order', async () => {
  const r = await rig();
  try {
    r.culprit.send('warm');
    await r.culprit.inbox.waitFor(1);
    await until(() => ((r.host.handoffPort().current()?.state as { total?: number } | undefined)?.total ?? 0) >= 3, 'a checkpoint with some traffic in it');
    r.culprit.send('spin-once');
    r.culprit.send('after');
    await assertContained(r, 'HOTLINE_E_HANDLER_HUNG', 'v1');
    await r.culprit.inbox.waitFor(3);
    const [, hung, after] = r.culprit.inbox.messages.map((m) => m.split(':'));
    assert.deepEqual([hung![2], after![2]], ['spin-once', 'after'], 'replayed once, then the message that arrived meanwhile');
    assert.ok(Number(hung![1]) > 1, 'the global state came back from the checkpoint, not from a fresh init()');
  } finally {
    await r.close();
  }
});

test('worker mode: a never-settling async handler past hangTimeout gets its worker terminated and restored', async () => {
  const r = await rig();
  try {
    r.culprit.send('never-once');
    r.culprit.send('after');
    await assertContained(r, 'HOTLINE_E_HANDLER_HUNG', 'v1');
    await r.culprit.inbox.waitFor(2);
    assert.deepEqual(r.culprit.inbox.messages.map((m) => m.split(':')[2]), ['never-once', 'after']);
  } finally {
    await r.close();
  }
});

test('worker mode: a throw in a real timer, then process.exit() inside a handler, each kill the worker: HOTLINE_E_VERSION_CRASHED, restored; the exiting message is replayed once', async () => {
  const r = await rig();
  try {
    r.culprit.send('timer-throw');
    await until(() => restores(r.host).some((s) => s.outcome === 'restored'), 'the first restore');
    assert.equal(restores(r.host)[0]!.error?.code, 'HOTLINE_E_VERSION_CRASHED');
    await r.culprit.inbox.waitFor(1);
    r.culprit.send('exit-once');
    await until(() => restores(r.host).filter((s) => s.outcome === 'restored').length === 2, 'the second restore');
    await assertContained(r, 'HOTLINE_E_VERSION_CRASHED', 'v1');
    await r.culprit.inbox.waitFor(2);
    assert.match(r.culprit.inbox.messages[1]!, /:exit-once$/);
  } finally {
    await r.close();
  }
});

test('worker mode: a version past workerLimits is HOTLINE_E_VERSION_OOM; the host and its connections carry on', async () => {
  // Near its limit V8 collects again and again before it gives up: a long hangTimeout keeps that from reading as a hang.
  const r = await rig({ workerLimits: { maxOldGenerationSizeMb: 48 }, hangTimeout: 10_000 });
  try {
    r.culprit.send('oom-once');
    await assertContained(r, 'HOTLINE_E_VERSION_OOM', 'v1');
  } finally {
    await r.close();
  }
});

test('worker mode: a message in flight at two hangs is dropped (HOTLINE_E_POISON_MESSAGE, its sender closed with 1011), never replayed a third time', async () => {
  const r = await rig();
  try {
    r.culprit.send('spin');
    const closed = await r.culprit.closed;
    assert.deepEqual(closed, { code: 1011, reason: 'HOTLINE_E_POISON_MESSAGE' });
    await until(() => restores(r.host).filter((s) => s.outcome === 'restored').length >= 2, 'two restores');
    const { longestGap } = await r.stopPinging();
    assert.equal(restores(r.host).length, 2, 'no third attempt');
    await until(() => r.host.status().connections === 1, 'only the sender left');
    assert.equal(r.bystander.ws.readyState, r.bystander.ws.OPEN);
    assert.ok(longestGap < 2 * GAP_BOUND, `the bystander's longest gap ${Math.round(longestGap)} ms spans two restores at most`);
  } finally {
    await r.close();
  }
});

test('worker mode with sessions: a message in flight at two hangs is dropped with a drop frame to its sender, whose session goes on', async () => {
  const r = await rig({ sessions: true });
  const c = connect(r.host.addresses()[0]!.url, { backoff: { initialDelay: 50, maxDelay: 300 } });
  const got: string[] = [];
  const dropped: Array<{ code: string; data: unknown }> = [];
  let closes = 0;
  c.on('message', (d) => got.push(String(d)));
  c.on('dropped', (info) => dropped.push({ code: info.code, data: info.data }));
  c.on('close', () => closes++);
  c.on('reconnecting', () => closes++);
  try {
    c.send('before');
    await until(() => got.some((m) => m.endsWith(':before')), 'the session client is served');
    c.send('spin');
    await until(() => dropped.length === 1, 'the poison message dropped', 20_000);
    assert.deepEqual(dropped, [{ code: 'HOTLINE_E_POISON_MESSAGE', data: 'spin' }]);
    assert.equal(c.queued, 0, 'the client no longer holds it for a replay');
    assert.equal(restores(r.host).length, 2, 'no third attempt');
    c.send('after');
    await until(() => got.some((m) => m.endsWith(':after')), 'the same session is served after the drop');
    assert.equal(closes, 0, 'the session socket was never closed or reconnected');
    assert.equal(r.host.status().sessionsPoisoned, 1);
    const { longestGap } = await r.stopPinging();
    assert.equal(r.bystander.ws.readyState, r.bystander.ws.OPEN);
    assert.ok(longestGap < 2 * GAP_BOUND, `the bystander's longest gap ${Math.round(longestGap)} ms spans two restores at most`);
  } finally {
    c.close();
    await r.close();
  }
});

test('worker mode: a busy init() in a reload times out; the old version keeps serving, the bystander is never paused', async () => {
  const r = await rig({ hookTimeout: 800 });
  try {
    r.p.write(PLUGIN('v2', r.markers, 'init: () => { for (;;) {} },'));
    await assert.rejects(r.host.reload(), (err: { code?: string }) => err.code === 'HOTLINE_E_INIT_TIMEOUT');
    const { longestGap } = await r.stopPinging();
    assert.equal(r.host.status().plugin?.version, 'v1');
    assert.equal(r.host.status().connections, 2);
    assert.ok(longestGap < GAP_BOUND, `longest gap ${Math.round(longestGap)} ms`);
    r.culprit.send('after');
    await r.culprit.inbox.waitFor(1);
    assert.match(r.culprit.inbox.messages[0]!, /^v1:/);
    // A migrate() that never settles, and a dispose() that spins, in the same worker mode: the old version serves on.
    r.p.write(PLUGIN('v3', r.markers, 'migrate: () => new Promise(() => undefined),'));
    await assert.rejects(r.host.reload(), (err: { code?: string }) => err.code === 'HOTLINE_E_MIGRATE');
    assert.equal(r.host.status().plugin?.version, 'v1');
    r.culprit.send('after-migrate');
    await r.culprit.inbox.waitFor(2);
    assert.match(r.culprit.inbox.messages[1]!, /^v1:.*:after-migrate$/);
    assert.equal(existsSync(r.markers), true);
  } finally {
    await r.close();
  }
});

test('worker mode, last known good: a new build that hangs while on probation is replaced by the previous build, not restarted', async () => {
  const r = await rig({ probation: { window: 60_000 } });
  try {
    r.p.write(PLUGIN('v2', r.markers));
    await r.host.reload();
    r.culprit.send('spin-once');
    await assertContained(r, 'HOTLINE_E_HANDLER_HUNG', 'v1');
    const rec = restores(r.host).at(-1)!;
    assert.match(rec.from ?? '', /@v2$/);
    assert.match(rec.to ?? '', /@v1$/);
    await r.culprit.inbox.waitFor(1);
    assert.match(r.culprit.inbox.messages[0]!, /^v1:.*:spin-once$/, 'the hung message replayed once, to the previous build');
  } finally {
    await r.close();
  }
});

test('worker mode, crash loop: a build that crashes after every restart is restarted with backoff, then replaced by the previous build', async () => {
  const r = await rig();
  try {
    r.p.write(PLUGIN('v2', r.markers, "init: () => { realSetTimeout(() => { throw new Error('crash after start'); }, 50); return { total: 0 }; },"));
    await r.host.reload();
    await until(() => r.host.status().plugin?.version === 'v1' && restores(r.host).some((s) => s.outcome === 'restored' && /@v1$/.test(s.to ?? '')), 'back on v1', 20_000);
    const { longestGap } = await r.stopPinging();
    const rs = restores(r.host);
    assert.ok(rs.length >= 3, `restarted on v2 first (${rs.map((s) => s.to).join(', ')})`);
    assert.ok(rs.every((s) => s.error?.code === 'HOTLINE_E_VERSION_CRASHED'));
    assert.equal(r.host.status().connections, 2, 'no connection closed');
    assert.ok(longestGap < 3 * GAP_BOUND, `longest gap ${Math.round(longestGap)} ms`);
  } finally {
    await r.close();
  }
});

test('worker mode: a state that cannot be cloned across refuses the swap with HOTLINE_E_STATE_CLONE; the old version keeps serving', async () => {
  const markers = mkdtempSync(path.join(tmpdir(), 'hotline-iso-'));
  const p = pluginDir(PLUGIN('v1', markers).replace('init: () => ({ total: 0 }),', 'init: () => ({ total: 0, format: (n: number) => String(n) }),'));
  const host = await createHost({ plugin: p.entry, listen: [{ transport: 'ws', host: '127.0.0.1', port: 0 }], isolation: 'worker', logger: quietLogger, probation: false });
  try {
    const c = await wsClient(host.addresses()[0]!.url);
    p.write(PLUGIN('v2', markers));
    await assert.rejects(host.reload(), (err: { code?: string }) => err.code === 'HOTLINE_E_STATE_CLONE');
    assert.equal(host.status().plugin?.version, 'v1');
    c.send('still');
    assert.match(await c.inbox.next(), /^v1:1:still$/);
    c.ws.close();
  } finally {
    await host.close();
    p.remove();
  }
});
