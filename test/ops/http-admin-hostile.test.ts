/**
 * The HTTP admin against hostile clients, with a fake command table (its deps): oversized headers, headers that never
 * finish, too many event-stream subscribers, a subscriber that never reads. And the running totals across workers.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { EventStream, MAX_SUBSCRIBERS } from '../../src/ops/event-stream.js';
import { HttpAdmin } from '../../src/ops/http-admin.js';
import type { MetricFamily } from '../../src/ops/metric-family.js';
import { MetricTotals, checkFamilies } from '../../src/ops/metric-totals.js';

const TOKEN = 'hostile-token-0123456789';

async function fakeAdmin(headersTimeout?: number): Promise<{ admin: HttpAdmin; events: EventStream; url: string; calls: string[] }> {
  const events = new EventStream();
  const calls: string[] = [];
  const admin = new HttpAdmin(
    { address: { host: '127.0.0.1', port: 0 }, token: TOKEN, ...(headersTimeout !== undefined && { headersTimeout }) },
    {
      command: async (cmd, o) => {
        calls.push(`${cmd}${o.force ? ' force' : ''}`);
        return { cmd };
      },
      metrics: async () => '# nothing\n',
      readiness: () => 'ready',
      events,
    },
  );
  await admin.start();
  return { admin, events, url: admin.url, calls };
}

test('oversized headers get 431 and a header that never finishes is cut off; neither reaches the command table', async () => {
  const { admin, url, calls } = await fakeAdmin(300);
  try {
    const big = await fetch(`${url}/api/status`, { headers: { authorization: `Bearer ${TOKEN}`, 'x-pad': 'x'.repeat(10_000) } });
    assert.equal(big.status, 431);
    const { port } = admin.address;
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    let answer = '';
    socket.on('data', (d) => (answer += d));
    socket.write('GET /api/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ');
    // No deadline of our own: the server's headersTimeout ends it (within its 300 ms plus one checking interval).
    await new Promise((r) => socket.once('close', r));
    assert.match(answer, /^HTTP\/1\.1 4\d\d /);
    assert.deepEqual(calls, []);
  } finally {
    await admin.close();
  }
});

test('at most MAX_SUBSCRIBERS event streams; a subscriber that never reads is dropped, the others keep theirs', async () => {
  const { admin, events, url } = await fakeAdmin();
  const ac = new AbortController();
  const sockets: net.Socket[] = [];
  try {
    // Raw sockets that send the request and then never read: their kernel buffers fill, then the server's queue.
    const { port } = admin.address;
    for (let i = 0; i < MAX_SUBSCRIBERS - 1; i++) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => undefined);
      await new Promise((r) => s.once('connect', r));
      s.write(`GET /api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`);
      s.pause();
      sockets.push(s);
    }
    const reader = await fetch(`${url}/api/events`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: ac.signal });
    assert.equal(reader.status, 200);
    while (events.subscribers < MAX_SUBSCRIBERS) await new Promise((r) => setImmediate(r));
    const refused = await fetch(`${url}/api/events`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(refused.status, 503);
    // 32 MiB of events: past what the kernel buffers of a loopback socket hold, every stalled subscriber passes its
    // 1 MiB bound and is dropped; the reading one stays.
    const body = reader.body!.getReader();
    const big = 'y'.repeat(64 * 1024);
    for (let i = 0; i < 512 && events.subscribers > 1; i++) {
      events.publish('swap', { big });
      await body.read();
    }
    assert.equal(events.subscribers, 1);
  } finally {
    ac.abort();
    for (const s of sockets) s.destroy();
    await admin.close();
  }
});

test('running totals: counters and histograms add up across workers and never go down; gauges are the serving worker\'s', () => {
  const fam = (name: string, type: MetricFamily['type'], value: number, labels = {}): MetricFamily => ({ name, help: name, type, values: [{ labels, value }] });
  const t = new MetricTotals();
  const sum = (name: string) => t.report().find((f) => f.name === name)!.values.reduce((a, s) => a + s.value, 0);
  t.update(1, [fam('c_total', 'counter', 10), fam('g', 'gauge', 5)]);
  t.update(1, [fam('c_total', 'counter', 12), fam('g', 'gauge', 6)]);
  assert.equal(sum('c_total'), 12);
  // Worker 2 takes over (a restart): its counter starts at 0, the report does not.
  t.update(2, [fam('c_total', 'counter', 1), fam('g', 'gauge', 2)]);
  assert.equal(sum('c_total'), 13);
  assert.equal(sum('g'), 2);
  // An upgrade that carried `c_total` itself: worker 3 starts from worker 2's value, so it is not added again.
  t.update(2, [fam('c_total', 'counter', 4), fam('g', 'gauge', 2)]);
  t.retire(2, new Set(['c_total']));
  t.update(3, [fam('c_total', 'counter', 4 + 3), fam('g', 'gauge', 1)]);
  assert.equal(sum('c_total'), 12 + 7);
  assert.deepEqual(
    checkFamilies([null, { name: 'bad name', help: '', type: 'counter', values: [] }, { name: 'ok', help: 'h', type: 'gauge', values: [{ value: 'x', labels: {} }, { value: 1, labels: { a: {} } }, { value: 2, labels: { a: 'b' } }] }]),
    [{ name: 'ok', help: 'h', type: 'gauge', values: [{ value: 2, labels: { a: 'b' } }] }],
  );
});
