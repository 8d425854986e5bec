/**
 * Frames a client sends after its hello, while the session is still being created or restored (the store may be
 * slow), wait in a buffer until the session takes the socket. That buffer was unbounded: a client that flooded it
 * while the store held the hello grew the host's memory without limit. It is bounded by the connection's own inbound
 * limits (maxQueuedMessages, maxQueuedBytes); over either, a 1008 close and HOTLINE_E_INBOUND_OVERFLOW.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket from 'ws';
import { createHost, type HostLimits, MemorySessionStore } from '../../src/index.js';
import type { SessionChange } from '../../src/session/store.js';
import { SESSION_PROTOCOL } from '../../src/session/protocol.js';
import { counterPlugin, pluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';
import { until } from '../helpers/until.js';

/** A memory store whose session creations wait until `release()`: the hello is held, frames after it pile up. */
class HeldStore extends MemorySessionStore {
  #held: Array<() => void> = [];
  creates = 0;
  override write(id: string, change: SessionChange): void | Promise<void> {
    if (!change.create) return super.write(id, change);
    this.creates++;
    return new Promise<void>((resolve) => this.#held.push(() => resolve(super.write(id, change))));
  }
  release(): void {
    for (const r of this.#held.splice(0)) r();
  }
}

async function heldHost(limits: HostLimits) {
  const p = pluginDir(counterPlugin('v1'));
  const store = new HeldStore();
  const host = await createHost({ plugin: p.entry, sessions: { store }, limits, logger: quietLogger });
  const codes: string[] = [];
  host.on('connection-error', (err) => codes.push(err.code));
  const close = async () => {
    store.release();
    await host.close();
    p.remove();
  };
  return { host, store, codes, url: host.addresses()[0]!.url, close };
}

/** A raw hotline.v1 socket that has sent its hello; `closed` resolves with the close code. */
async function helloSocket(url: string) {
  const ws = new WebSocket(url, [SESSION_PROTOCOL]);
  ws.on('error', () => undefined);
  const received: string[] = [];
  ws.on('message', (d) => received.push(String(d)));
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.send(JSON.stringify({ t: 'hello', v: 1, token: null, rx: 0 }));
  return { ws, received, closed };
}

const frame = (s: number, d: string) => JSON.stringify({ t: 'm', s, d });

test('more frames after the hello than maxQueuedMessages, while the session is created: a coded 1008 close', async () => {
  const h = await heldHost({ maxQueuedMessages: 8 });
  try {
    const c = await helloSocket(h.url);
    await until(() => h.store.creates === 1, 'the hello to reach the store');
    for (let s = 1; s <= 200; s++) c.ws.send(frame(s, 'x'));
    // The store still holds the hello: only the bound can close this socket.
    const code = await Promise.race([c.closed, new Promise<string>((r) => setTimeout(() => r('still open'), 5_000).unref())]);
    assert.equal(code, 1008);
    assert.deepEqual(h.codes, ['HOTLINE_E_INBOUND_OVERFLOW']);
    h.store.release();
    await until(() => h.host.status().connections === 0, 'no connection left for the closed socket');
  } finally {
    await h.close();
  }
});

test('more bytes after the hello than maxQueuedBytes, while the session is created: a coded 1008 close', async () => {
  const h = await heldHost({ maxQueuedBytes: 64 * 1024 });
  try {
    const c = await helloSocket(h.url);
    await until(() => h.store.creates === 1, 'the hello to reach the store');
    const big = 'y'.repeat(30 * 1024);
    for (let s = 1; s <= 4; s++) c.ws.send(frame(s, big));
    const code = await Promise.race([c.closed, new Promise<string>((r) => setTimeout(() => r('still open'), 5_000).unref())]);
    assert.equal(code, 1008);
    assert.deepEqual(h.codes, ['HOTLINE_E_INBOUND_OVERFLOW']);
  } finally {
    await h.close();
  }
});

test('frames after the hello within the bounds are handled, in order, once the session exists', async () => {
  const h = await heldHost({ maxQueuedMessages: 8 });
  try {
    const c = await helloSocket(h.url);
    // Sent with the hello, so they reach the server while the store holds the session's creation.
    for (let s = 1; s <= 8; s++) c.ws.send(frame(s, `m${s}`));
    await until(() => h.store.creates === 1, 'the hello to reach the store');
    h.store.release();
    await until(() => c.received.filter((m) => m.includes('"t":"m"')).length === 8, 'eight replies');
    const replies = c.received.filter((m) => m.includes('"t":"m"')).map((m) => (JSON.parse(m) as { d: string }).d);
    assert.deepEqual(replies, [1, 2, 3, 4, 5, 6, 7, 8].map((n) => `v1:${n}:${n}|m${n}`));
    assert.deepEqual(h.codes, []);
    c.ws.close();
  } finally {
    await h.close();
  }
});
