/**
 * The handshake pacer's queue is bounded (src/transport/handshake-pacer.ts): past it, an upgrade is answered 503 with
 * Retry-After and a hotline.v1 hello is closed with 1013 (try again later), each reported as
 * HOTLINE_E_HANDSHAKE_BACKLOG, and nothing hangs. Run with a tiny bound (one step a turn, two waiting) so that a
 * burst of 60 crosses it; and with a small byte bound, which the bytes a client sends behind its request count against.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import WebSocket from 'ws';
import { SESSION_PROTOCOL } from '../../src/session/protocol.js';
import { wsClient } from '../helpers/clients.js';
import { counterPlugin, pluginDir } from '../helpers/plugin-dir.js';
import { acceptedSockets, answerHeads, ChildHost, UPGRADE_REQUEST, waitUntil, written } from './hostile-rig.js';

const BURST = 60;

test('upgrades past the pacer queue get 503 with Retry-After, hellos past it 1013; each is reported; the host serves on', async () => {
  const p = pluginDir(counterPlugin('v1'));
  const host = await ChildHost.start({ plugin: p.entry, sessions: {}, handshakePacing: { perTurn: 1, maxQueued: 2 } });
  const url = host.addresses[0]!.url;
  const sockets: net.Socket[] = [];
  const sessions: WebSocket[] = [];
  try {
    // Raw upgrades, connected first and then sent together.
    sockets.push(...(await acceptedSockets(Number(new URL(url).port), BURST)));
    const answers = answerHeads(sockets);
    await host.frozen(() => Promise.all(sockets.map((s) => written(s, UPGRADE_REQUEST))));
    await waitUntil(() => answers.length === BURST, 20_000, 'every upgrade answered');
    const refused = answers.filter((a) => a.startsWith('HTTP/1.1 503'));
    assert.equal(refused.length + answers.filter((a) => a.startsWith('HTTP/1.1 101')).length, BURST, 'each is 101 or 503');
    assert.ok(refused.length > 0, 'a burst past the bound is refused');
    assert.ok(refused.every((a) => /\r\nRetry-After: 1\r\n/.test(a)), 'a refusal says when to come back');
    await waitUntil(() => host.count('HOTLINE_E_HANDSHAKE_BACKLOG') === refused.length, 10_000, 'each refusal reported');

    // Session hellos: the sockets are open first (paced one by one), then every hello is sent at once.
    for (let i = 0; i < BURST; i++) {
      const ws = new WebSocket(url, [SESSION_PROTOCOL]);
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      sessions.push(ws);
    }
    const outcomes: string[] = [];
    for (const ws of sessions) {
      ws.once('message', () => outcomes.push('welcome'));
      ws.once('close', (code) => outcomes.push(String(code)));
    }
    const hello = JSON.stringify({ t: 'hello', v: 1, token: null, rx: 0 });
    await host.frozen(() => Promise.all(sessions.map((ws) => new Promise((resolve) => ws.send(hello, resolve)))));
    await waitUntil(() => outcomes.filter((o) => o === 'welcome' || o === '1013').length === BURST, 20_000, 'every hello answered');
    const closed = outcomes.filter((o) => o === '1013').length;
    assert.ok(closed > 0, 'hellos past the bound are closed with 1013');
    await waitUntil(() => host.count('HOTLINE_E_HANDSHAKE_BACKLOG') === refused.length + closed, 10_000, 'each hello refusal reported');

    const st = await host.status();
    assert.equal(st.handshakes.refused, refused.length + closed, 'status counts the refusals');
    assert.equal(st.handshakes.queued, 0, 'nothing left waiting');
    // The host serves on.
    const live = await wsClient(url);
    live.send('ping');
    await live.inbox.waitFor(1, 10_000);
    assert.match(live.inbox.messages[0]!, /\|ping$/);
    live.ws.close();
  } finally {
    for (const s of sockets) s.destroy();
    for (const ws of sessions) ws.terminate();
    await host.stop();
  }
});

test('what clients send behind their upgrade request counts against the queue\'s byte bound: past it, 503', async () => {
  const p = pluginDir(counterPlugin('v1'));
  // Room for 100 waiting steps but only 2 KiB of what they hold: an upgrade with 4 KiB behind it runs at once, in a
  // turn of its own, or is refused.
  const host = await ChildHost.start({ plugin: p.entry, handshakePacing: { perTurn: 1, maxQueued: 100, maxQueuedBytes: 2 * 1024 } });
  const url = host.addresses[0]!.url;
  const sockets: net.Socket[] = [];
  try {
    sockets.push(...(await acceptedSockets(Number(new URL(url).port), BURST)));
    const answers = answerHeads(sockets);
    // A WebSocket client must wait for the 101 before it sends (RFC 6455 4.1); these do not: 4 KiB of frames early.
    const early = Buffer.alloc(4096, 0x81);
    await host.frozen(() => Promise.all(sockets.map((s) => written(s, Buffer.concat([Buffer.from(UPGRADE_REQUEST), early])))));
    await waitUntil(() => answers.length === BURST, 20_000, 'every upgrade answered');
    const refused = answers.filter((a) => a.startsWith('HTTP/1.1 503')).length;
    assert.ok(refused > 0, 'past the byte bound an upgrade is refused');
    const st = await host.status();
    assert.equal(st.handshakes.refused, refused);
    assert.equal(st.handshakes.queued, 0);
  } finally {
    for (const s of sockets) s.destroy();
    await host.stop();
  }
});
