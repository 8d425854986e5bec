/**
 * issue 15: links, host-owned outbound long connections, against a real upstream the test runs.
 * - 20 swaps while the upstream streams numbered messages: the upstream sees 1 connection, every message is handled
 *   once, in order, and link.state (migrated through migrateLink) counted each of them (TCP lines, TCP length, WS).
 * - The upstream killed and restarted: the link reconnects, the hello hook runs first, the queued sends follow up to
 *   the bound, and the overflow got HOTLINE_E_LINK_QUEUE_FULL.
 * - A version that throws in onLinkMessage is counted against it, probation rolls it back, the link stays up.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createHost, type HotlineError } from '../../src/index.js';
import { tcpClient, until } from '../helpers/clients.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';
import { startUpstream, type UpstreamKind } from './upstream.js';

function relayPlugin(tag: string, options: object, extra = ''): string {
  return `
import { definePlugin } from 'hotline';
const OPTS = ${JSON.stringify(options)};
const text = (d) => (typeof d === 'string' ? d : Buffer.from(d).toString());
export default definePlugin({
  name: 'relay', version: '${tag}', api: 1,
  init(ctx) { ctx.link('up', OPTS); return {}; },
  migrate(prev, ctx) { ctx.link('up', OPTS); return prev.state; },
  migrateLink: (s) => (s === undefined ? s : { ...s, migrations: s.migrations + 1 }),
  onLinkOpen(link) { link.state ??= { count: 0, migrations: 0 }; },
  onLinkMessage(link, data) {
    const n = text(data);
    if (n === 'hello-back') return;
    link.state.count++;
    ${extra}
    link.send('ack:' + n + ':' + link.state.count);
  },
  onLinkReconnect(link) { link.send('hello'); },
  onMessage(conn, data, ctx) {
    const [cmd, arg] = String(data).split(':');
    if (cmd === 'send') {
      try { ctx.link('up', OPTS).send(arg); conn.send('ok'); } catch (e) { conn.send(e.code); }
    } else if (cmd === 'state') conn.send(JSON.stringify(ctx.link('up', OPTS).state));
  },
});
`;
}

for (const kind of ['lines', 'length', 'ws'] as UpstreamKind[]) {
  test(`${kind}: 20 swaps while the upstream streams: 1 connection, every message once and in order`, async () => {
    const up = await startUpstream(kind);
    const opts = kind === 'ws' ? { url: up.url } : { url: up.url, framing: kind };
    const p = pluginDir(relayPlugin('v0', opts));
    const host = await createHost({ plugin: p.entry, listen: [{ transport: 'tcp' }], logger: quietLogger, probation: false });
    try {
      await until(() => host.status().links?.[0]?.phase === 'open', 'the link to open');
      up.startStreaming();
      for (let i = 1; i <= 20; i++) {
        p.write(relayPlugin(`v${i}`, opts));
        const rec = await host.reload();
        assert.equal(rec.outcome, 'switched');
      }
      const sent = up.stopStreaming();
      assert.ok(sent > 0);
      await up.received.waitFor(sent, 15_000);
      assert.equal(up.accepted, 1, 'the upstream saw one connection across 20 swaps');
      const expected = Array.from({ length: sent }, (_, i) => `ack:${i}:${i + 1}`);
      assert.deepEqual(up.received.messages, expected, 'every message handled once, in order, counted by link.state');
      const c = await tcpClient(host.addresses()[0]!.port);
      c.send('state');
      assert.deepEqual(JSON.parse(await c.inbox.next()), { count: sent, migrations: 20 });
      c.socket.destroy();
      const [st] = host.status().links!;
      assert.equal(st!.reconnects, 0);
      assert.equal(st!.phase, 'open');
      assert.equal(st!.messagesIn, sent);
      assert.ok(st!.bytesIn > 0 && st!.bytesOut > 0);
    } finally {
      await host.close();
      await up.kill();
      p.remove();
    }
  });
}

test('upstream killed and restarted: reconnect, hello first, queued sends up to the bound, overflow coded', async () => {
  const up = await startUpstream('lines');
  const opts = { url: up.url, maxQueuedSends: 5, backoff: { initialDelay: 20, maxDelay: 200 } };
  const p = pluginDir(relayPlugin('v0', opts));
  const host = await createHost({ plugin: p.entry, listen: [{ transport: 'tcp' }], logger: quietLogger, probation: false });
  try {
    await until(() => host.status().links?.[0]?.phase === 'open', 'the link to open');
    await up.kill();
    await until(() => host.status().links?.[0]?.phase !== 'open', 'the link to notice the upstream went away');
    const c = await tcpClient(host.addresses()[0]!.port);
    for (let i = 0; i < 8; i++) c.send(`send:q${i}`);
    await c.inbox.waitFor(8);
    assert.deepEqual(c.inbox.messages, ['ok', 'ok', 'ok', 'ok', 'ok', ...Array(3).fill('HOTLINE_E_LINK_QUEUE_FULL')]);
    assert.equal(host.status().links![0]!.queued, 5);
    await up.restart();
    await up.received.waitFor(6, 15_000);
    assert.deepEqual(up.received.messages, ['hello', 'q0', 'q1', 'q2', 'q3', 'q4']);
    const st = host.status().links![0]!;
    assert.equal(st.reconnects, 1);
    assert.equal(st.queued, 0);
    assert.equal(up.accepted, 2);
    c.socket.destroy();
  } finally {
    await host.close();
    await up.kill();
    p.remove();
  }
});

test('an oversized upstream frame closes and reconnects the link, counted; a thrower is counted and rolled back, the link stays up', async () => {
  const up = await startUpstream('lines');
  const opts = { url: up.url, maxPayload: 64, backoff: { initialDelay: 10, maxDelay: 50 } };
  const p = pluginDir(relayPlugin('good', opts));
  const host = await createHost({
    plugin: p.entry,
    listen: [{ transport: 'tcp' }],
    logger: quietLogger,
    probation: { window: 30_000, minErrors: 3, maxErrorRate: 0.5 },
  });
  try {
    await until(() => host.status().links?.[0]?.phase === 'open', 'the link to open');
    up.sendRaw(Buffer.from('x'.repeat(200) + '\n'));
    await until(() => host.status().links?.[0]?.framingErrors === 1, 'the oversized frame to be refused');
    await until(() => host.status().links?.[0]?.reconnects === 1 && host.status().links?.[0]?.phase === 'open', 'the reconnect');
    assert.equal(up.accepted, 2);

    p.write(relayPlugin('bad', opts, `throw new Error('bad link handler');`));
    const failed = new Promise<HotlineError>((resolve) => host.once('probation-failed', (err) => resolve(err)));
    await host.reload();
    for (let i = 0; i < 6; i++) up.send(`m${i}`);
    const err = await failed;
    assert.equal(err.code, 'HOTLINE_E_PROBATION');
    await until(() => host.status().plugin?.version === 'good', 'the rollback to good');
    const bad = host.status().versions.find((v) => v.version === 'bad');
    assert.ok(bad === undefined || bad.errors >= 3);
    up.send('after');
    await until(() => up.received.messages.some((m) => m.startsWith('ack:after:')), 'good to handle the next message');
    assert.equal(up.accepted, 2, 'the throwing version and the rollback did not reconnect the link');
    assert.equal(host.status().links![0]!.reconnects, 1);
  } finally {
    await host.close();
    await up.kill();
    p.remove();
  }
});

test('a link the new version does not claim closes after the swap; other options under the same name are refused', async () => {
  const up = await startUpstream('lines');
  const opts = { url: up.url };
  const p = pluginDir(relayPlugin('v0', opts));
  const host = await createHost({ plugin: p.entry, listen: [{ transport: 'tcp' }], logger: quietLogger, probation: false });
  try {
    await until(() => host.status().links?.[0]?.phase === 'open', 'the link to open');
    p.write(relayPlugin('v1', { url: up.url, framing: 'length' }));
    await assert.rejects(host.reload(), (e: HotlineError) => e.code === 'HOTLINE_E_MIGRATE' || e.code === 'HOTLINE_E_LINK_OPTIONS');
    assert.equal(host.status().plugin?.version, 'v0');
    assert.equal(host.status().links?.[0]?.phase, 'open', 'the refused version left the link alone');
    p.write(`import { definePlugin } from 'hotline';\nexport default definePlugin({ name: 'relay', version: 'v2', api: 1, migrate: (prev) => prev.state, onMessage() {} });`);
    await host.reload();
    assert.equal(host.status().links, undefined, 'no version claims the link: it is closed');
    const c = await tcpClient(host.addresses()[0]!.port);
    c.send('x');
    await until(() => up.accepted === 1 && host.status().links === undefined, 'nothing reopens it');
    c.socket.destroy();
  } finally {
    await host.close();
    await up.kill();
    p.remove();
  }
});

test('worker mode refuses ctx.link() by name (HOTLINE_E_LINK_WORKER)', async () => {
  const p = pluginDir(`
import { definePlugin } from 'hotline';
export default definePlugin({
  name: 'w', version: '1', api: 1,
  onMessage(conn, data, ctx) {
    try { ctx.link('up', { url: 'tcp://127.0.0.1:9' }); conn.send('opened'); } catch (e) { conn.send(e.code); }
  },
});
`);
  const host = await createHost({ plugin: p.entry, listen: [{ transport: 'tcp' }], logger: quietLogger, isolation: 'worker' });
  try {
    const c = await tcpClient(host.addresses()[0]!.port);
    c.send('x');
    assert.equal(await c.inbox.next(), 'HOTLINE_E_LINK_WORKER');
    c.socket.destroy();
  } finally {
    await host.close();
    p.remove();
  }
});
