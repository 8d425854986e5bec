/**
 * issue 15: links through real process upgrades (`hotline start`'s supervisor, real worker processes), against real
 * upstreams the test runs (TCP lines, TCP length framing, WebSocket).
 * - 20 plugin swaps and 2 upgrades while the three upstreams stream numbered messages: each upstream sees exactly one
 *   connection the whole time, and a WebSocket client the plugin relays every message to receives each once, in
 *   order, counted by link.state (carried through swaps and upgrades).
 * - A partial frame in flight at the upgrade (half a line, half a length frame, half a WebSocket frame, an open
 *   fragmented WebSocket message) is completed in the new process, once.
 * - An adoption the new worker refuses aborts the upgrade; the old worker keeps every link, nothing lost, and the next
 *   upgrade carries them.
 * - A tls:// link cannot move its TLS session: it is carried as its state and reconnects in the new process, counted.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { adminRequest } from '../../src/admin/admin-client.js';
import type { UpgradeSummary } from '../../src/handoff/upgrade.js';
import type { LinkStatus } from '../../src/plugin/contract.js';
import { type WsClient, wsClient } from '../helpers/clients.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { selfSignedCert } from '../helpers/tls-cert.js';
import { until } from '../helpers/until.js';
import { startSupervisor } from '../handoff/supervisor-process.js';
import { startUpstream, type Upstream } from './upstream.js';

/** Relays every upstream message to every client as `name:message:count`, link.state counting per link. */
function relayPlugin(tag: string, links: Record<string, object>): string {
  return `
import { definePlugin } from 'hotline';
const LINKS = ${JSON.stringify(links)};
const text = (d) => (typeof d === 'string' ? d : Buffer.from(d).toString());
export default definePlugin({
  name: 'relay', version: '${tag}', api: 1,
  init(ctx) { for (const [n, o] of Object.entries(LINKS)) ctx.link(n, o); return {}; },
  migrate(prev, ctx) { for (const [n, o] of Object.entries(LINKS)) ctx.link(n, o); return prev.state; },
  onLinkOpen(link) { link.state ??= { count: 0 }; },
  onLinkMessage(link, data, ctx) {
    link.state.count++;
    ctx.broadcast(link.name + ':' + text(data) + ':' + link.state.count);
  },
  onMessage(conn, data, ctx) {
    const [cmd, name, arg] = String(data).split(':');
    if (cmd === 'send') { ctx.link(name, LINKS[name]).send(arg); conn.send('sent'); }
  },
});
`;
}

const status = async (admin: string) => (await adminRequest(admin, 'status')) as { pid: number; links?: LinkStatus[] };
const upgrade = async (admin: string) => (await adminRequest(admin, 'upgrade', 60_000)) as UpgradeSummary;
const reload = async (admin: string) => (await adminRequest(admin, 'reload', 60_000)) as { outcome: string };

/** The relayed messages of one link, as [message, count] pairs. */
function relayed(c: WsClient, name: string): Array<[string, number]> {
  return c.inbox.messages
    .filter((m) => m.startsWith(name + ':'))
    .map((m) => {
      const [, msg, count] = m.split(':');
      return [msg!, Number(count)];
    });
}

async function supervised(links: Record<string, object>) {
  const p = pluginDir(relayPlugin('v0', links), { 'worker.env': '' });
  const admin = path.join(p.dir, 'admin.sock');
  const sup = await startSupervisor({ entry: p.entry, admin, envFile: path.join(p.dir, 'worker.env'), readyTimeoutMs: 30_000 });
  const client = await wsClient(`ws://127.0.0.1:${sup.addresses[0]!.port}/`);
  const stop = async () => {
    client.ws.terminate();
    sup.child.kill('SIGTERM');
    await sup.exited;
    p.remove();
  };
  return { p, admin, sup, client, stop };
}

test('20 swaps and 2 upgrades while 3 upstreams stream: 1 connection each, every message once, in order', { timeout: 240_000 }, async () => {
  const ups: Record<string, Upstream> = { lines: await startUpstream('lines'), length: await startUpstream('length'), ws: await startUpstream('ws') };
  const links = {
    lines: { url: ups.lines!.url, framing: 'lines' },
    length: { url: ups.length!.url, framing: 'length' },
    ws: { url: ups.ws!.url },
  };
  const s = await supervised(links);
  try {
    await until(async () => (await status(s.admin)).links?.filter((l) => l.phase === 'open').length === 3, 'the three links to open', 20_000);
    const firstPid = (await status(s.admin)).pid;
    for (const u of Object.values(ups)) u.startStreaming();
    const pids = new Set([firstPid]);
    for (let i = 1; i <= 20; i++) {
      s.p.write(relayPlugin(`v${i}`, links));
      assert.equal((await reload(s.admin)).outcome, 'switched');
      if (i === 7 || i === 14) {
        const summary = await upgrade(s.admin);
        assert.equal(summary.outcome, 'committed', JSON.stringify(summary));
        assert.equal(summary.moved, 1, 'the relay client moved');
        assert.deepEqual(summary.links, { moved: 3, reconnecting: 0 });
        pids.add(summary.toPid);
      }
    }
    const sent = Object.fromEntries(Object.entries(ups).map(([n, u]) => [n, u.stopStreaming()]));
    const total = Object.values(sent).reduce((a, b) => a + b, 0);
    await s.client.inbox.waitFor(total, 60_000);
    assert.equal(pids.size, 3, 'two upgrades, three worker processes');
    for (const [name, u] of Object.entries(ups)) {
      assert.equal(u.accepted, 1, `${name}: the upstream saw exactly one connection`);
      const got = relayed(s.client, name);
      assert.ok(sent[name]! > 0);
      const expected = Array.from({ length: sent[name]! }, (_, i): [string, number] => [String(i), i + 1]);
      assert.deepEqual(got, expected, `${name}: every message once, in order, counted by link.state across swaps and upgrades`);
    }
    assert.equal(s.client.inbox.messages.length, total, 'nothing else, nothing twice');
    const st = await status(s.admin);
    assert.notEqual(st.pid, firstPid);
    for (const l of st.links!) {
      assert.equal(l.phase, 'open');
      assert.equal(l.reconnects, 0, `${l.name}: no reconnect`);
      assert.equal(l.upgradesMoved, 2, `${l.name}: both upgrades carried its socket`);
      assert.equal(l.messagesIn, sent[l.name], `${l.name}: counters carried across processes`);
    }
    // Sends still reach the upstream, through the socket the third process adopted.
    for (const name of Object.keys(ups)) s.client.send(`send:${name}:after`);
    for (const u of Object.values(ups)) await u.received.waitFor(1, 15_000);
    for (const u of Object.values(ups)) assert.deepEqual(u.received.messages, ['after']);
  } finally {
    await s.stop();
    for (const u of Object.values(ups)) await u.kill();
  }
});

/** A WebSocket frame from the server (unmasked): text, final unless `fin` is false. */
function wsFrame(payload: string, fin = true, opcode = 1): Buffer {
  const body = Buffer.from(payload);
  assert.ok(body.length < 126);
  return Buffer.concat([Buffer.from([(fin ? 0x80 : 0) | opcode, body.length]), body]);
}

function lengthFrame(payload: string): Buffer {
  const body = Buffer.from(payload);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
}

test('a partial frame in flight at the upgrade is completed in the new process, once', { timeout: 120_000 }, async () => {
  const ups = { lines: await startUpstream('lines'), length: await startUpstream('length'), ws: await startUpstream('ws'), frag: await startUpstream('ws') };
  const links = {
    lines: { url: ups.lines.url, framing: 'lines' },
    length: { url: ups.length.url, framing: 'length' },
    ws: { url: ups.ws.url },
    frag: { url: ups.frag.url },
  };
  const s = await supervised(links);
  try {
    await until(async () => (await status(s.admin)).links?.filter((l) => l.phase === 'open').length === 4, 'the links to open', 20_000);
    // A whole message and the first half of the next in one write: once the whole one is relayed, the half was read.
    ups.lines.sendRaw(Buffer.from('before\nhalf-'));
    const lf = lengthFrame('half-length');
    ups.length.sendRaw(Buffer.concat([lengthFrame('before'), lf.subarray(0, 7)]));
    const wf = wsFrame('half-websocket');
    ups.ws.sendRaw(Buffer.concat([wsFrame('before'), wf.subarray(0, 6)]));
    ups.frag.send('before');
    ups.frag.sendFragment('first-', false);
    await s.client.inbox.waitFor(4, 15_000);
    const summary = await upgrade(s.admin);
    assert.equal(summary.outcome, 'committed', JSON.stringify(summary));
    assert.deepEqual(summary.links, { moved: 4, reconnecting: 0 });
    ups.lines.sendRaw(Buffer.from('line\n'));
    ups.length.sendRaw(lf.subarray(7));
    ups.ws.sendRaw(wf.subarray(6));
    ups.frag.sendFragment('second', true);
    await s.client.inbox.waitFor(8, 15_000);
    assert.deepEqual(relayed(s.client, 'lines'), [['before', 1], ['half-line', 2]]);
    assert.deepEqual(relayed(s.client, 'length'), [['before', 1], ['half-length', 2]]);
    assert.deepEqual(relayed(s.client, 'ws'), [['before', 1], ['half-websocket', 2]]);
    assert.deepEqual(relayed(s.client, 'frag'), [['before', 1], ['first-second', 2]]);
    assert.equal(s.client.inbox.messages.length, 8);
    for (const [name, u] of Object.entries(ups)) assert.equal(u.accepted, 1, `${name}: one connection`);
    const st = await status(s.admin);
    for (const l of st.links!) assert.deepEqual([l.name, l.reconnects, l.framingErrors, l.upgradesMoved], [l.name, 0, 0, 1]);
  } finally {
    await s.stop();
    for (const u of Object.values(ups)) await u.kill();
  }
});

test('a link adoption the new worker refuses aborts the upgrade; the old worker keeps its links and loses nothing', { timeout: 120_000 }, async () => {
  const up = await startUpstream('lines');
  const links = { feed: { url: up.url, framing: 'lines' } };
  const s = await supervised(links);
  try {
    await until(async () => (await status(s.admin)).links?.[0]?.phase === 'open', 'the link to open', 20_000);
    // The env file is read at each fork: the fault applies to the next worker only.
    writeFileSync(path.join(s.p.dir, 'worker.env'), 'HOTLINE_FAULT=refuse-link\n');
    const pid = (await status(s.admin)).pid;
    up.startStreaming();
    const failed = await upgrade(s.admin);
    assert.equal(failed.outcome, 'aborted');
    assert.equal(failed.error?.code, 'HOTLINE_E_UPGRADE_REFUSED');
    assert.match(failed.error!.message, /HOTLINE_E_LINK_ADOPT/);
    assert.equal((await status(s.admin)).pid, pid, 'the old worker serves on');
    writeFileSync(path.join(s.p.dir, 'worker.env'), '');
    const ok = await upgrade(s.admin);
    assert.equal(ok.outcome, 'committed', JSON.stringify(ok));
    const sent = up.stopStreaming();
    await s.client.inbox.waitFor(sent, 30_000);
    assert.deepEqual(relayed(s.client, 'feed'), Array.from({ length: sent }, (_, i): [string, number] => [String(i), i + 1]));
    assert.equal(up.accepted, 1, 'no reconnect through the abort nor the upgrade after it');
  } finally {
    await s.stop();
    await up.kill();
  }
});

test('a tls:// link cannot move its TLS session: it reconnects in the new process, counted, its queue and state kept', { timeout: 120_000 }, async () => {
  const cert = selfSignedCert();
  const up = await startUpstream('lines', { key: readFileSync(cert.key), cert: readFileSync(cert.cert) });
  const links = { secure: { url: up.url, framing: 'lines', ca: cert.ca.toString(), servername: 'localhost' } };
  const s = await supervised(links);
  try {
    await until(async () => (await status(s.admin)).links?.[0]?.phase === 'open', 'the link to open', 20_000);
    up.send('one');
    await s.client.inbox.waitFor(1, 15_000);
    const summary = await upgrade(s.admin);
    assert.equal(summary.outcome, 'committed', JSON.stringify(summary));
    assert.deepEqual(summary.links, { moved: 0, reconnecting: 1 });
    await until(async () => (await status(s.admin)).links?.[0]?.phase === 'open', 'the link to reconnect', 20_000);
    assert.equal(up.accepted, 2, 'one reconnect');
    up.send('two');
    await s.client.inbox.waitFor(2, 15_000);
    assert.deepEqual(relayed(s.client, 'secure'), [['one', 1], ['two', 2]], 'link.state carried');
    const [l] = (await status(s.admin)).links!;
    assert.equal(l!.reconnects, 1);
    assert.equal(l!.upgradesReconnected, 1);
  } finally {
    await s.stop();
    await up.kill();
    cert.remove();
  }
});
