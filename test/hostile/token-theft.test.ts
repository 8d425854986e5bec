/**
 * Issue 9 item 7: a resume token works once. Every resume rotates it (the welcome carries the next one), so a token
 * replayed after its holder resumed is refused (HOTLINE_E_SESSION_TOKEN, a new session for the replayer), and the
 * holder is not cut off. Real host, real sockets, the real client of src/client.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket from 'ws';
import { connect, type HotlineClient } from '../../src/client/index.js';
import { createHost, FileSessionStore, type Host } from '../../src/index.js';
import { SESSION_PROTOCOL } from '../../src/session/protocol.js';
import { counterPlugin, pluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';
import { CuttingProxy } from '../session/fixtures.js';

interface Welcome {
  t: 'welcome';
  token: string;
  resumed: boolean;
  lost: { code: string } | null;
}

/** A raw hotline.v1 socket that says hello with `token` and resolves with the welcome. */
async function hello(url: string, token: string | null, rx = 0): Promise<{ ws: WebSocket; welcome: Welcome }> {
  const ws = new WebSocket(url, [SESSION_PROTOCOL]);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const welcome = new Promise<Welcome>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no welcome')), 10_000);
    ws.once('message', (data) => {
      clearTimeout(timer);
      resolve(JSON.parse(String(data)) as Welcome);
    });
  });
  ws.send(JSON.stringify({ t: 'hello', v: 1, token, rx }));
  return { ws, welcome: await welcome };
}

function closeRaw(ws: WebSocket): Promise<void> {
  if (ws.readyState === ws.CLOSED) return Promise.resolve();
  return new Promise((resolve) => {
    ws.once('close', () => resolve());
    ws.close();
  });
}

function waitFor<T>(what: string, fn: (done: (v: T) => void) => void, timeoutMs = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
    fn((v) => {
      clearTimeout(timer);
      resolve(v);
    });
  });
}

/** The next `event` of a client (its emitter has no once()). */
function next<K extends 'open' | 'resumed' | 'lost-session'>(c: HotlineClient, event: K): Promise<Parameters<Parameters<HotlineClient['on']>[1]>[0]> {
  return waitFor(event, (done) => {
    const off = c.on(event, ((info: never) => {
      off();
      done(info);
    }) as never);
  });
}

async function reply(c: HotlineClient, text: string): Promise<string> {
  const got = waitFor<string>(`a reply to ${text}`, (done) => {
    const on = (d: unknown) => {
      if (!String(d).endsWith('|' + text)) return;
      c.off('message', on);
      done(String(d));
    };
    c.on('message', on);
  });
  c.send(text);
  return got;
}

function tokenCodes(host: Host): string[] {
  const codes: string[] = [];
  host.on('connection-error', (err) => {
    if (err.code === 'HOTLINE_E_SESSION_TOKEN') codes.push(err.message);
  });
  return codes;
}

test('a token used once is refused; the victim stays connected and keeps its replies', async () => {
  const p = pluginDir(counterPlugin('v1'));
  const host = await createHost({ plugin: p.entry, sessions: true, logger: quietLogger });
  const refusals = tokenCodes(host);
  const proxy = new CuttingProxy(host.addresses()[0]!.port);
  const proxyPort = await proxy.listen();
  const victim = connect(`ws://127.0.0.1:${proxyPort}/`, { backoff: { initialDelay: 10, maxDelay: 50 } });
  let thief: HotlineClient | undefined;
  try {
    const first = ((await next(victim, 'open')) as { token: string }).token;
    assert.equal(await reply(victim, 'a'), 'v1:1:1|a');
    // The victim's socket is cut; it resumes with the first token and gets a new one in the welcome.
    const resumed = next(victim, 'resumed');
    proxy.cutOnNextChunk();
    victim.send('b');
    await resumed;
    assert.notEqual(victim.token, first, 'the welcome of a resume carries a new token');
    assert.equal(await reply(victim, 'c'), 'v1:3:3|c');

    // The thief replays the first token, with the real client: it gets a new session of its own, and a lost-session.
    let victimReconnects = 0;
    victim.on('reconnecting', () => victimReconnects++);
    thief = connect(host.addresses()[0]!.url, { resume: { token: first, received: 0 } });
    const stolenMessages: string[] = [];
    thief.on('message', (d) => stolenMessages.push(String(d)));
    const lost = ((await next(thief, 'lost-session')) as { code: string }).code;
    assert.equal(lost, 'HOTLINE_E_SESSION_TOKEN');
    assert.equal(await reply(thief, 'x'), 'v1:1:4|x', 'the thief is a new connection (its own count starts at 1)');
    assert.deepEqual(stolenMessages, ['v1:1:4|x'], 'nothing of the victim was replayed to the thief');

    // The victim was not cut off, and its session goes on.
    assert.equal(await reply(victim, 'd'), 'v1:4:5|d');
    assert.equal(victimReconnects, 0);
    assert.equal(victim.state, 'open');
    assert.equal(refusals.length, 1, 'the refused replay is reported with its code');

    // The same with a raw socket and the victim's previous token, while it is connected.
    const raw = await hello(host.addresses()[0]!.url, first);
    assert.equal(raw.welcome.resumed, false);
    assert.equal(raw.welcome.lost?.code, 'HOTLINE_E_SESSION_TOKEN');
    await closeRaw(raw.ws);
    assert.equal(await reply(victim, 'e'), 'v1:5:6|e');
    assert.equal(victimReconnects, 0);
  } finally {
    thief?.close();
    victim.close();
    await proxy.close();
    await host.close();
    p.remove();
  }
});

test('two hellos racing with the same token: the first resumes, the second is refused', async () => {
  const p = pluginDir(counterPlugin('v1'));
  const host = await createHost({ plugin: p.entry, sessions: true, logger: quietLogger });
  const url = host.addresses()[0]!.url;
  try {
    const a = await hello(url, null);
    const token = a.welcome.token;
    // A message and its ack make the client "heard from": only the current token resumes it from here.
    a.ws.send(JSON.stringify({ t: 'm', s: 1, d: 'hi' }));
    await closeRaw(a.ws);
    const [x, y] = await Promise.all([hello(url, token), hello(url, token)]);
    const welcomes = [x.welcome, y.welcome];
    assert.equal(welcomes.filter((w) => w.resumed).length, 1, JSON.stringify(welcomes));
    const refused = welcomes.find((w) => !w.resumed)!;
    assert.equal(refused.lost?.code, 'HOTLINE_E_SESSION_TOKEN');
    const winner = x.welcome.resumed ? x : y;
    assert.notEqual(winner.welcome.token, token);
    // The winner was not cut off by the loser.
    assert.equal(winner.ws.readyState, WebSocket.OPEN);
    await Promise.all([closeRaw(x.ws), closeRaw(y.ws)]);
  } finally {
    await host.close();
    p.remove();
  }
});

test('a welcome lost with its socket: the token before it still resumes, until the client has spoken', async () => {
  const p = pluginDir(counterPlugin('v1'));
  const host = await createHost({ plugin: p.entry, sessions: true, logger: quietLogger });
  const url = host.addresses()[0]!.url;
  try {
    const a = await hello(url, null);
    const t0 = a.welcome.token;
    await closeRaw(a.ws);
    // Resumed with t0; the client "never saw" this welcome (t1) and its socket went: t0 still works...
    const b = await hello(url, t0);
    assert.equal(b.welcome.resumed, true);
    const t1 = b.welcome.token;
    await closeRaw(b.ws);
    const c = await hello(url, t0);
    assert.equal(c.welcome.resumed, true, 'the previous token resumes while the current one is unconfirmed');
    const t2 = c.welcome.token;
    // ...but once the client speaks on the socket that brought t2, t1 and t0 are dead.
    c.ws.send(JSON.stringify({ t: 'a', a: 0 }));
    await closeRaw(c.ws);
    for (const old of [t0, t1]) {
      const r = await hello(url, old);
      assert.equal(r.welcome.resumed, false);
      assert.equal(r.welcome.lost?.code, 'HOTLINE_E_SESSION_TOKEN');
      await closeRaw(r.ws);
    }
    const d = await hello(url, t2);
    assert.equal(d.welcome.resumed, true);
    await closeRaw(d.ws);
  } finally {
    await host.close();
    p.remove();
  }
});

test('rotation survives a restart on the file store: the used token is refused by the next process', async () => {
  const p = pluginDir(counterPlugin('v1'));
  const dir = p.dir + '/sessions';
  let host = await createHost({ plugin: p.entry, sessions: { store: new FileSessionStore(dir) }, logger: quietLogger });
  let url = host.addresses()[0]!.url;
  try {
    const a = await hello(url, null);
    const t0 = a.welcome.token;
    a.ws.send(JSON.stringify({ t: 'm', s: 1, d: 'one' }));
    await closeRaw(a.ws);
    const b = await hello(url, t0);
    assert.equal(b.welcome.resumed, true);
    const t1 = b.welcome.token;
    b.ws.send(JSON.stringify({ t: 'a', a: 0 }));
    // The host shuts down (session records are kept for the next process), and a new one opens the same store.
    await host.close();
    await closeRaw(b.ws);
    host = await createHost({ plugin: p.entry, sessions: { store: new FileSessionStore(dir) }, logger: quietLogger });
    url = host.addresses()[0]!.url;
    const replay = await hello(url, t0);
    assert.equal(replay.welcome.resumed, false);
    assert.equal(replay.welcome.lost?.code, 'HOTLINE_E_SESSION_TOKEN');
    await closeRaw(replay.ws);
    const c = await hello(url, t1);
    assert.equal(c.welcome.resumed, true, 'the current token resumes in the new process');
    assert.notEqual(c.welcome.token, t1);
    await closeRaw(c.ws);
  } finally {
    await host.close();
    p.remove();
  }
});
