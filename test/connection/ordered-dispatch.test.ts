/**
 * Per-connection ordered dispatch (DESIGN.md §2): one handler at a time per connection, in arrival order, even when
 * handlers are async with random delays; different connections run concurrently; messages buffered during a swap go
 * to the new version in arrival order.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createHost } from '../../src/index.js';
import { tcpClient, wsClient } from '../helpers/clients.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';
import { RELEASE, startRig, trafficPlugin } from '../swap/traffic-rig.js';

/** Replies `${seq}` after sleeping the delay given in the message `${seq}:${delayMs}`; flags overlapping handlers. */
const DELAYED = `
import { definePlugin } from 'hotline';
let inflight = 0;
let maxInflight = 0;
export default definePlugin<unknown, { busy: boolean }>({
  name: 'delayed', version: '1', api: 1,
  onOpen(conn) { conn.state = { busy: false }; },
  async onMessage(conn, data) {
    const text = String(data);
    if (text === 'max') { conn.send('max:' + maxInflight); return; }
    if (conn.state.busy) conn.send('OVERLAP');
    conn.state.busy = true;
    inflight++;
    maxInflight = Math.max(maxInflight, inflight);
    const [seq, delay] = text.split(':');
    await new Promise((r) => setTimeout(r, Number(delay)));
    inflight--;
    conn.state.busy = false;
    conn.send(seq!);
  },
});
`;

/** mulberry32: a small seeded generator, so a failing run can be replayed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('async handlers with random delays reply in order per connection; connections run concurrently', async () => {
  const p = pluginDir(DELAYED);
  const host = await createHost({ plugin: p.entry, listen: [{ transport: 'ws' }, { transport: 'tcp' }], logger: quietLogger });
  try {
    const [wsAddr, tcpAddr] = host.addresses();
    const clients = [await wsClient(wsAddr!.url), await wsClient(wsAddr!.url), await wsClient(wsAddr!.url), await tcpClient(tcpAddr!.port)];
    const random = seeded(0x5eed);
    const N = 60;
    for (let i = 0; i < N; i++) {
      for (const c of clients) c.send(`${i}:${Math.floor(random() * 6)}`);
    }
    await Promise.all(clients.map((c) => c.inbox.waitFor(N, 20_000)));
    const expected = Array.from({ length: N }, (_, i) => String(i));
    for (const c of clients) assert.deepEqual(c.inbox.messages, expected);
    clients[0]!.send('max');
    const max = Number((await clients[0]!.inbox.next()).slice(4));
    assert.ok(max > 1, `handlers of different connections overlapped (max in flight ${max})`);
    assert.ok(max <= clients.length, `never more than one handler per connection (max in flight ${max})`);
  } finally {
    await host.close();
    p.remove();
  }
});

test('one slow connection does not block another', async () => {
  const rig = await startRig();
  const release = Symbol.for(RELEASE);
  try {
    rig.ws.send('hang');
    rig.ws.send('behind-the-hang');
    for (let i = 0; i < 20; i++) {
      const r = await rig.tcp.ask(`t${i}`);
      assert.equal(r.payload, `t${i}`);
    }
    assert.equal(rig.ws.inbox.messages.length, 0, 'the slow connection is still waiting on its own handler');
    ((globalThis as Record<symbol, unknown>)[release] as () => void)();
    await rig.ws.inbox.waitFor(2);
    rig.ws.verify(['v1']);
    rig.tcp.verify(['v1']);
  } finally {
    delete (globalThis as Record<symbol, unknown>)[release];
    await rig.close();
  }
});

test('messages buffered during a swap go to the new version in arrival order', async () => {
  const rig = await startRig({ settleTimeout: 20_000 });
  const release = Symbol.for(RELEASE);
  try {
    await rig.tcp.ask('warm');
    // An old handler in flight holds the swap in its suspend phase for as long as the test wants.
    rig.ws.send('hang');
    const suspended = new Promise<void>((resolve) =>
      rig.host.on('phase', (phase) => {
        if (phase === 'suspending') resolve();
      }),
    );
    rig.plugin.write(trafficPlugin('v2'));
    const swap = rig.host.reload();
    await suspended;
    for (let i = 0; i < 30; i++) rig.tcp.send(`buffered-${i}`);
    rig.ws.send('ws-after-hang');
    // Let the sends reach the host: the messages-in counter is the observable sign.
    for (let i = 0; i < 2000 && rig.host.status().messages.in < 1 + 1 + 30 + 1; i++) await new Promise((r) => setTimeout(r, 2));
    assert.equal(rig.host.status().messages.in, 33);
    assert.equal(rig.host.status().phase, 'suspending');
    assert.equal(rig.tcp.inbox.messages.length, 1, 'nothing dispatched while suspended');

    ((globalThis as Record<symbol, unknown>)[release] as () => void)();
    const record = await swap;
    assert.equal(record.outcome, 'switched');
    await rig.tcp.stop();
    await rig.ws.stop();
    const tcp = rig.tcp.verify(['v1', 'v2']);
    assert.deepEqual(tcp.map((r) => r.tag), ['v1', ...Array<string>(30).fill('v2')]);
    const ws = rig.ws.verify(['v1', 'v2']);
    assert.deepEqual(ws.map((r) => r.tag), ['v1', 'v2'], 'the old handler finished on v1, the next message went to v2');
  } finally {
    delete (globalThis as Record<symbol, unknown>)[release];
    await rig.close();
  }
});
