import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { connect, type HotlineClient } from '../../src/client/index.js';
import { createHost, type ErrorCode, MemorySessionStore } from '../../src/index.js';
import { wsClient } from '../helpers/clients.js';
import { counterPlugin, pluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';
import { CuttingProxy, ExactnessChecker, streamPlugin } from './fixtures.js';

function once<T>(client: HotlineClient, event: 'open' | 'resumed' | 'lost-session'): Promise<T> {
  return new Promise((resolve) => {
    const off = client.on(event, (info: unknown) => {
      off();
      resolve(info as T);
    });
  });
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 25));
  assert.ok(cond(), `timed out waiting for ${what}`);
}

test('a tampered token gives a new session and a coded lost-session, never the old data', async () => {
  const p = pluginDir(streamPlugin(1000));
  const host = await createHost({ plugin: p.entry, sessions: true, logger: quietLogger });
  const url = host.addresses()[0]!.url;
  try {
    const a = connect(url);
    const check = new ExactnessChecker(a);
    await once(a, 'open');
    a.send('1');
    await check.until(() => check.replies === 1, 'reply 1');
    const token = a.token!;
    a.close();
    // Edit the last character of the signature (base64 ignores its low bits, so a byte compare would miss some edits).
    const last = token.at(-1) === 'A' ? 'B' : 'A';
    const b = connect(url, { resume: { token: token.slice(0, -1) + last, received: 1 } });
    const lost = await once<{ code: ErrorCode; unacked: unknown[] }>(b, 'lost-session');
    assert.equal(lost.code, 'HOTLINE_E_SESSION_TOKEN');
    const checkB = new ExactnessChecker(b);
    b.send('1'); // a new session starts from 1: the server's check would reply ERR otherwise
    await checkB.until(() => checkB.replies === 1, 'reply on the new session');
    assert.deepEqual(checkB.errors, []);
    assert.notEqual(b.token, token);
    b.close();
  } finally {
    await host.close();
    p.remove();
  }
});

test('an expired session gives HOTLINE_E_SESSION_EXPIRED; an unknown one HOTLINE_E_SESSION_UNKNOWN', async () => {
  const p = pluginDir(streamPlugin(1000));
  const host = await createHost({ plugin: p.entry, sessions: { ttl: 200 }, logger: quietLogger });
  const url = host.addresses()[0]!.url;
  const proxy = new CuttingProxy(host.addresses()[0]!.port);
  const port = await proxy.listen();
  try {
    const a = connect(`ws://127.0.0.1:${port}/`);
    await once(a, 'open');
    const token = a.token!;
    // The network goes away (no goodbye reaches the server), then the client gives up.
    await proxy.close();
    a.close();
    // The session waits `ttl` for its client, then the plugin sees it close.
    await until(() => host.status().connections === 0, 'the session to expire');
    const b = connect(url, { resume: { token, received: 0 } });
    assert.equal((await once<{ code: ErrorCode }>(b, 'lost-session')).code, 'HOTLINE_E_SESSION_EXPIRED');
    b.close();
  } finally {
    await host.close();
    p.remove();
  }
  // Another host with its own (memory) store never heard of it.
  const p2 = pluginDir(streamPlugin(1000));
  const host2 = await createHost({ plugin: p2.entry, sessions: { store: new MemorySessionStore() }, logger: quietLogger });
  try {
    const a = connect(host2.addresses()[0]!.url);
    await once(a, 'open');
    const token = a.token!;
    a.close();
    await host2.close();
    const host3 = await createHost({ plugin: p2.entry, sessions: true, logger: quietLogger });
    try {
      const b = connect(host3.addresses()[0]!.url, { resume: { token, received: 0 } });
      // Signed with another secret too: the signature check comes first.
      assert.equal((await once<{ code: ErrorCode }>(b, 'lost-session')).code, 'HOTLINE_E_SESSION_TOKEN');
      b.close();
    } finally {
      await host3.close();
    }
    const shared = new MemorySessionStore();
    const host4 = await createHost({ plugin: p2.entry, sessions: { store: shared }, logger: quietLogger });
    try {
      const c = connect(host4.addresses()[0]!.url);
      await once(c, 'open');
      const t = c.token!;
      // close() ends the session on the server: its record leaves the store.
      c.close();
      await until(() => host4.status().connections === 0 && shared.size === 0, 'the session to end');
      const d = connect(host4.addresses()[0]!.url, { resume: { token: t, received: 0 } });
      assert.equal((await once<{ code: ErrorCode }>(d, 'lost-session')).code, 'HOTLINE_E_SESSION_UNKNOWN');
      d.close();
    } finally {
      await host4.close();
    }
  } finally {
    p2.remove();
  }
});

test('a replay buffer overflowed while the client was away gives HOTLINE_E_SESSION_OVERFLOW and its unacked messages', async () => {
  const p = pluginDir(streamPlugin(2));
  const store = new MemorySessionStore({ maxReplay: 20 });
  const host = await createHost({ plugin: p.entry, sessions: { store }, logger: quietLogger });
  const proxy = new CuttingProxy(host.addresses()[0]!.port);
  const port = await proxy.listen();
  try {
    const a = connect(`ws://127.0.0.1:${port}/`, { backoff: { initialDelay: 60_000, maxDelay: 60_000 }, random: () => 0.99 });
    const check = new ExactnessChecker(a);
    await check.until(() => check.ticks >= 3, 'ticks');
    proxy.cutOnNextChunk();
    await check.until(() => a.state === 'reconnecting', 'the cut');
    a.send('1'); // queued while away: the client hands it back with the lost session
    const token = a.token!;
    const received = a.received;
    a.close();
    // Ticks keep coming for the detached session; more than 20 of them overflow its buffer.
    const id = token.split('.')[0]!;
    await until(() => (store.get(id)?.outSeq ?? 0) > received + 20, 'more than maxReplay messages for the detached session');
    const b = connect(host.addresses()[0]!.url, { resume: { token, received } });
    const lost = await once<{ code: ErrorCode; unacked: unknown[] }>(b, 'lost-session');
    assert.equal(lost.code, 'HOTLINE_E_SESSION_OVERFLOW');
    b.close();
    assert.deepEqual(check.errors, []);
  } finally {
    await proxy.close();
    await host.close();
    p.remove();
  }
});

test('send() queues while disconnected, bounded by maxQueue (HOTLINE_E_CLIENT_QUEUE_FULL); after close HOTLINE_E_CLIENT_CLOSED', async () => {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((resolve) => srv.close(resolve)); // nobody listens there now
  const c = connect(`ws://127.0.0.1:${port}/`, { maxQueue: 3, backoff: { initialDelay: 5, maxDelay: 20 } });
  const attempts: number[] = [];
  await new Promise<void>((resolve) =>
    c.on('reconnecting', ({ attempt }) => {
      attempts.push(attempt);
      if (attempt === 3) resolve();
    }),
  );
  assert.deepEqual(attempts, [1, 2, 3]);
  c.send('1');
  c.send('2');
  c.send('3');
  assert.equal(c.queued, 3);
  assert.throws(() => c.send('4'), (err: { code?: string }) => err.code === 'HOTLINE_E_CLIENT_QUEUE_FULL');
  c.close();
  assert.equal(c.state, 'closed');
  assert.throws(() => c.send('5'), (err: { code?: string }) => err.code === 'HOTLINE_E_CLIENT_CLOSED');
});

test('a plain WebSocket client is served as before by a host with sessions on', async () => {
  const p = pluginDir(counterPlugin('v1'));
  const host = await createHost({ plugin: p.entry, sessions: true, logger: quietLogger });
  try {
    const ws = await wsClient(host.addresses()[0]!.url);
    ws.send('a');
    assert.equal(await ws.inbox.next(), 'v1:1:1|a');
    assert.equal(ws.ws.protocol, '');
    assert.equal(host.status().sessions, 0);
    ws.ws.close();
  } finally {
    await host.close();
    p.remove();
  }
});
