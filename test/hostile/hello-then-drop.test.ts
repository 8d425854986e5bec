/**
 * Issue 9 item 6: a client that opens session after session and drops each one right after its welcome. Each
 * detached session waits for its client (60 s by default), and used to hold a connection slot meanwhile, so a few
 * thousand handshakes locked every new client out with 503. Now detached sessions have their own bound
 * (sessions.maxDetached): the oldest are evicted (HOTLINE_E_SESSION_EVICTED, counted), and live clients are served.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket from 'ws';
import { createHost } from '../../src/index.js';
import { SESSION_PROTOCOL } from '../../src/session/protocol.js';
import { until, upgradeStatus, wsClient } from '../helpers/clients.js';
import { counterPlugin, pluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';

/** Open a hotline.v1 socket, say hello, and resolve with the welcome's token once the socket is gone. */
function helloThenDrop(url: string, token: string | null = null): Promise<{ token: string; resumed: boolean; lost: string | undefined }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, [SESSION_PROTOCOL]);
    let welcome: { token: string; resumed: boolean; lost: { code: string } | null } | undefined;
    ws.once('open', () => ws.send(JSON.stringify({ t: 'hello', v: 1, token, rx: 0 })));
    ws.once('message', (d) => {
      welcome = JSON.parse(String(d));
      ws.terminate();
    });
    ws.once('error', reject);
    ws.once('close', () => (welcome ? resolve({ token: welcome.token, resumed: welcome.resumed, lost: welcome.lost?.code }) : reject(new Error('closed before a welcome'))));
  });
}

test('hello-then-drop handshakes: new clients are still served, the oldest detached sessions are evicted and counted', async () => {
  const p = pluginDir(counterPlugin('v1'));
  const MAX_CONNECTIONS = 200;
  const MAX_DETACHED = 100;
  const DROPS = 1000;
  const host = await createHost({
    plugin: p.entry,
    sessions: { maxDetached: MAX_DETACHED },
    limits: { maxConnections: MAX_CONNECTIONS },
    logger: quietLogger,
  });
  const url = host.addresses()[0]!.url;
  const codes = new Map<string, number>();
  host.on('connection-error', (err) => codes.set(err.code, (codes.get(err.code) ?? 0) + 1));
  const bystander = await wsClient(url);
  try {
    // An unrelated plain client pings throughout and must get every reply.
    let pings = 0;
    let pongs = 0;
    bystander.ws.on('message', () => pongs++);
    const pinger = setInterval(() => {
      pings++;
      bystander.send('p' + pings);
    }, 50);
    const tokens: string[] = [];
    for (let i = 0; i < DROPS; i += 50) {
      const batch = await Promise.all(Array.from({ length: 50 }, () => helloThenDrop(url)));
      tokens.push(...batch.map((b) => b.token));
    }
    // Every drop has reached the host once DROPS - MAX_DETACHED sessions were evicted (the client's close is not the host's).
    await until(() => host.status().sessionsEvicted === DROPS - MAX_DETACHED, 'every drop detached');
    clearInterval(pinger);
    await until(() => pongs === pings, 'every ping answered');

    const st = host.status();
    assert.equal(st.sessionsDetached, MAX_DETACHED);
    assert.equal(st.sessionsEvicted, DROPS - MAX_DETACHED);
    assert.equal(codes.get('HOTLINE_E_SESSION_EVICTED'), DROPS - MAX_DETACHED, 'each eviction is reported with its code');
    assert.equal(codes.get('HOTLINE_E_MAX_CONNECTIONS'), undefined, 'nobody was refused');
    // Dropped sessions do not hold live slots: a full set of new clients fits.
    const fresh = await Promise.all(Array.from({ length: MAX_CONNECTIONS - 1 }, () => wsClient(url)));
    fresh[0]!.send('hi');
    assert.equal(await fresh[0]!.inbox.next(), `v1:1:${pings + 1}|hi`);
    // And one more than maxConnections live is still refused: the live bound holds.
    assert.equal(await upgradeStatus(url), 503);
    for (const c of fresh) c.ws.terminate();

    // The newest detached session still resumes; the oldest was evicted (its record dropped: "unknown").
    await until(() => host.status().connections <= MAX_DETACHED + 1, 'fresh clients gone');
    const newest = await helloThenDrop(url, tokens[tokens.length - 1]!);
    assert.equal(newest.resumed, true);
    const oldest = await helloThenDrop(url, tokens[0]!);
    assert.equal(oldest.resumed, false);
    assert.equal(oldest.lost, 'HOTLINE_E_SESSION_UNKNOWN');
    assert.equal(pongs, pings);
  } finally {
    bystander.ws.terminate();
    await host.close();
    p.remove();
  }
});

test('hotline.v1 sockets that never say hello hold live slots until their hello timeout', async () => {
  const p = pluginDir(counterPlugin('v1'));
  const host = await createHost({ plugin: p.entry, sessions: true, limits: { maxConnections: 20, handshakeTimeout: 60_000 }, logger: quietLogger });
  const url = host.addresses()[0]!.url;
  const silent: WebSocket[] = [];
  try {
    for (let i = 0; i < 20; i++) {
      const ws = new WebSocket(url, [SESSION_PROTOCOL]);
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      silent.push(ws);
    }
    // They have no Connection yet, but each holds a socket: the 21st is refused, so silence cannot bypass the bound.
    assert.equal(await upgradeStatus(url), 503);
    for (const ws of silent) ws.terminate();
    await until(() => host.status().connections === 0, 'silent sockets gone');
    await until(async () => (await upgradeStatus(url)) === 101, 'a client served again once they are gone');
  } finally {
    for (const ws of silent) ws.terminate();
    await host.close();
    p.remove();
  }
});
