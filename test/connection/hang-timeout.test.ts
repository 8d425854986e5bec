/**
 * hangTimeout (issue 11, inline mode): an async handler that does not settle in time is abandoned. Its connection's
 * queue goes on, the in-flight count a swap waits for is released, it is counted against its version with
 * HOTLINE_E_HANDLER_HUNG, and a late settle of it is ignored. The dispatcher and connections themselves (a link that
 * records what is sent) for the counting, then a real host over real WebSockets for the reload and the slot.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { Connection } from '../../src/connection/connection.js';
import { type DispatchTarget, Dispatcher } from '../../src/connection/dispatcher.js';
import { createHost, isHotlineError } from '../../src/index.js';
import type { MessageData } from '../../src/plugin/contract.js';
import { wsClient } from '../helpers/clients.js';
import { fakeLink } from '../helpers/fake-link.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';
import { until } from '../helpers/until.js';

const link = fakeLink();

/** A target whose message handler returns a promise the test settles by hand, one per message. */
function scripted(): { target: DispatchTarget; calls: string[]; errors: string[]; settle: Map<string, () => void> } {
  const calls: string[] = [];
  const errors: string[] = [];
  const settle = new Map<string, () => void>();
  const target: DispatchTarget = {
    open: () => undefined,
    message: (_conn, data: MessageData) => {
      const m = String(data);
      calls.push(m);
      if (m.startsWith('sync')) return undefined;
      return new Promise<void>((resolve) => settle.set(m, resolve));
    },
    close: () => undefined,
    handlerError: (err) => errors.push(isHotlineError(err) ? `${err.code}: ${err.message}` : String(err)),
  };
  return { target, calls, errors, settle };
}

test('a never-settling handler is abandoned after hangTimeout: the queue goes on, the swap’s in-flight count is released, a late settle is ignored', async () => {
  const s = scripted();
  const d = new Dispatcher(s.target, { maxSendBuffer: 1 << 20, maxQueuedMessages: 1_000, maxQueuedBytes: 1 << 24, hangTimeout: 40 }, { connectionError: () => undefined, connectionFinished: () => undefined });
  const conn = new Connection(link, d, { id: 'c1' });
  const other = new Connection(link, d, { id: 'c2' });
  conn.receive('stuck');
  conn.receive('next');
  conn.receive('sync-after');
  other.receive('sync-other');
  assert.deepEqual(s.calls, ['stuck', 'sync-other'], 'one handler at a time per connection; the other connection is not held');
  assert.equal(d.inflight, 1);
  assert.equal(await d.whenIdle(5), false, 'a swap would wait for it');

  await until(() => s.calls.includes('next'), 'the next message dispatched after the abandon', 5_000);
  assert.equal(s.errors.length, 1);
  assert.match(s.errors[0]!, /^HOTLINE_E_HANDLER_HUNG: connection c1: onMessage did not settle within hangTimeout \(40 ms\)/);
  assert.equal(d.handlersAbandoned, 1);
  assert.equal(d.inflight, 1, 'released for "stuck", taken by "next"');

  // The abandoned handler settles late, while "next" runs: nothing more is dispatched, nothing released twice.
  s.settle.get('stuck')!();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(s.calls, ['stuck', 'sync-other', 'next'], 'the late settle did not run the queue');
  assert.equal(d.inflight, 1);

  s.settle.get('next')!();
  await until(() => s.calls.includes('sync-after'), 'the queue after "next"', 5_000);
  assert.equal(d.inflight, 0);
  assert.equal(await d.whenIdle(5), true);
  assert.equal(s.errors.length, 1, 'a handler that settled in time is not abandoned');
  d.stopSweep();
});

test('handlers that settle within hangTimeout are never abandoned, across many sweeps', async () => {
  const s = scripted();
  const d = new Dispatcher(s.target, { maxSendBuffer: 1 << 20, maxQueuedMessages: 1_000, maxQueuedBytes: 1 << 24, hangTimeout: 80 }, { connectionError: () => undefined, connectionFinished: () => undefined });
  const conn = new Connection(link, d, { id: 'c1' });
  for (let i = 0; i < 20; i++) {
    conn.receive(`m${i}`);
    await new Promise((r) => setTimeout(r, 10));
    s.settle.get(`m${i}`)!();
  }
  await until(() => s.calls.length === 20, 'every message', 5_000);
  assert.deepEqual(s.errors, []);
  assert.equal(d.handlersAbandoned, 0);
  d.stopSweep();
});

const NEVER = (tag: string) => `
import { definePlugin } from 'hotline';
export default definePlugin({
  name: 'never', version: '${tag}', api: 1,
  async onMessage(conn, data) {
    if (data === 'never') await new Promise(() => undefined);
    conn.send('${tag}:' + String(data));
  },
});
`;

test('a real host: after a never-settling onMessage, the connection is served, a reload right after succeeds, status shows HOTLINE_E_HANDLER_HUNG, the slot is freed', async () => {
  const p = pluginDir(NEVER('v1'));
  const host = await createHost({ plugin: p.entry, listen: [{ transport: 'ws', host: '127.0.0.1', port: 0 }], hangTimeout: 200, settleTimeout: 2_000, logger: quietLogger, probation: false });
  try {
    const c = await wsClient(host.addresses()[0]!.url);
    c.send('never');
    c.send('a');
    c.send('b');
    await c.inbox.waitFor(2, 10_000);
    assert.deepEqual(c.inbox.messages, ['v1:a', 'v1:b'], 'the next messages of the connection are handled, in order');

    c.send('never');
    writeFileSync(p.entry, NEVER('v2'));
    const record = await host.reload();
    assert.equal(record.outcome, 'switched', `the swap does not wait for the abandoned handler: ${JSON.stringify(record.error)}`);
    c.send('c');
    await c.inbox.waitFor(3, 10_000);
    assert.equal(c.inbox.messages[2], 'v2:c');

    const status = host.status();
    const [v1, v2] = status.versions;
    assert.equal(status.handlersAbandoned, 2);
    // Both were v1's handlers (the second started before the reload), counted against v1 where probation sees them.
    assert.equal(v1?.errors, 2);
    assert.equal(v1?.lastError?.code, 'HOTLINE_E_HANDLER_HUNG');
    assert.match(v1!.lastError!.message, /^never@v1: connection \S+: onMessage did not settle within hangTimeout \(200 ms\)/);
    assert.equal(v2?.errors, 0);

    c.ws.close();
    await until(() => host.status().connections === 0, 'the connection leaving the table', 10_000);
  } finally {
    await host.close();
    p.remove();
  }
});
