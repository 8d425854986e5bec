/**
 * The HTTP admin of an in-process host (issue 14): /metrics scraped during swaps under traffic, the bearer token,
 * the API on the admin command table, bounded and checked input, /readyz during a shutdown, the event stream.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { createHost, type Host } from '../../src/index.js';
import { isHotlineError } from '../../src/errors.js';
import { wsClient } from '../helpers/clients.js';
import { counterPlugin, pluginDir } from '../helpers/plugin-dir.js';
import { parseExposition } from '../helpers/prom-text.js';
import { quietLogger } from '../helpers/quiet-logger.js';
import { until } from '../helpers/until.js';

const TOKEN = 'test-token-0123456789abcdef';
const auth = { authorization: `Bearer ${TOKEN}` };

function base(host: Host): string {
  const a = host.httpAdminAddress!;
  return `http://${a.host}:${a.port}`;
}

async function scrape(host: Host) {
  const res = await fetch(`${base(host)}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
}

test('/metrics scraped during swaps under traffic: the exposition parses and the counters move as they should', async () => {
  const p = pluginDir(counterPlugin('1.0.0', `onClose() {}, check() {}`));
  const host = await createHost({ plugin: p.entry, logger: quietLogger, httpAdmin: { listen: '127.0.0.1:0', token: TOKEN } });
  const clients = await Promise.all([0, 1, 2].map(() => wsClient(host.addresses()[0]!.url)));
  let sent = 0;
  let stop = false;
  const traffic = (async () => {
    while (!stop) {
      for (const c of clients) c.ws.send(`m${sent++}`);
      await new Promise((r) => setImmediate(r));
    }
  })();
  try {
    const seen: number[] = [];
    for (let v = 2; v <= 4; v++) {
      p.write(counterPlugin(`1.0.${v}`));
      const res = await fetch(`${base(host)}/api/reload`, { method: 'POST', headers: auth });
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as { result: { outcome: string } }).result.outcome, 'switched');
      seen.push((await scrape(host)).sum('hotline_messages_received_total'));
    }
    stop = true;
    await traffic;
    await Promise.all(clients.map((c) => c.inbox.waitFor(sent / 3)));
    const m = await scrape(host);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! >= seen[i - 1]!, 'a counter never goes down');
    assert.equal(m.sum('hotline_messages_received_total'), sent);
    assert.equal(m.sum('hotline_messages_sent_total'), sent);
    assert.equal(m.sum('hotline_handler_duration_seconds_count'), sent, 'one observation per handled message');
    assert.equal(m.sum('hotline_handler_duration_seconds_bucket', { le: '+Inf' }), sent);
    assert.ok(m.sum('hotline_handler_duration_seconds_count', { version: '1.0.4' }) > 0, 'the histogram is per version');
    assert.equal(m.types.get('hotline_handler_duration_seconds'), 'histogram');
    assert.equal(m.sum('hotline_swaps_total', { outcome: 'switched' }), 4, 'the start and three reloads');
    assert.equal(m.sum('hotline_swaps_total', { outcome: 'switched', trigger: 'admin' }), 3);
    assert.equal(m.sum('hotline_swap_phase_duration_seconds_count', { phase: 'building' }), 4);
    assert.equal(m.sum('hotline_connections', { transport: 'ws', version: '1.0.4' }), 3);
    assert.equal(m.sum('hotline_version_info', { version: '1.0.4' }), 1);
    assert.ok(m.sum('nodejs_heap_size_used_bytes') > 0);
    assert.ok(m.samples.has('nodejs_eventloop_lag_p99_seconds{}'));
    // Bounded labels: no connection id or address, only these names (each from a bounded set of values).
    const allowed = new Set(['version', 'code', 'outcome', 'trigger', 'phase', 'transport', 'le', 'state']);
    for (const key of m.samples.keys()) {
      for (const [, name] of key.matchAll(/([a-z_]+)="/g)) assert.ok(allowed.has(name!), `${key}: label ${name}`);
    }
  } finally {
    stop = true;
    for (const c of clients) c.ws.close();
    await host.close();
    p.remove();
  }
});

test('handler errors are counted per version and code; an unchanged reload and an aborted one by outcome', async () => {
  const p = pluginDir(`
import { definePlugin } from 'hotline';
export default definePlugin({ name: 'e', version: '2.0.0', api: 1, probation: undefined,
  onMessage(conn, data) { if (data === 'boom') throw new Error('boom'); conn.send(data); } });`);
  const host = await createHost({ plugin: p.entry, logger: quietLogger, metrics: true, probation: false });
  const c = await wsClient(host.addresses()[0]!.url);
  try {
    c.ws.send('boom');
    c.ws.send('ok');
    await c.inbox.waitFor(1);
    await host.reload('reload', { ifChanged: true });
    p.write('export default 1 +;');
    await assert.rejects(host.reload(), (e) => isHotlineError(e, 'HOTLINE_E_BUILD'));
    const m = parseExposition(await host.metrics());
    assert.equal(m.sum('hotline_handler_errors_total', { version: '2.0.0', code: 'HOTLINE_E_HANDLER' }), 1);
    assert.equal(m.sum('hotline_swaps_total', { outcome: 'unchanged' }), 1);
    assert.equal(m.sum('hotline_swaps_total', { outcome: 'aborted' }), 1);
    assert.equal(m.sum('hotline_swap_duration_seconds_count', { outcome: 'aborted' }), 1);
  } finally {
    c.ws.close();
    await host.close();
    p.remove();
  }
});

test('the API needs the token: 401 without, 403 wrong; input is checked with coded errors', async () => {
  const p = pluginDir(counterPlugin('1.0.0'));
  const host = await createHost({ plugin: p.entry, logger: quietLogger, httpAdmin: { listen: '127.0.0.1:0', token: TOKEN } });
  const url = base(host);
  const code = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;
  try {
    const none = await fetch(`${url}/api/status`);
    assert.equal(none.status, 401);
    assert.equal(await code(none), 'HOTLINE_E_ADMIN_TOKEN');
    assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
    const wrong = await fetch(`${url}/api/status`, { headers: { authorization: `Bearer ${TOKEN}x` } });
    assert.equal(wrong.status, 403);
    assert.equal(await code(wrong), 'HOTLINE_E_ADMIN_TOKEN');
    const short = await fetch(`${url}/api/reload`, { method: 'POST', headers: { authorization: 'Bearer x' } });
    assert.equal(short.status, 403, 'a wrong token of another length is just as wrong');
    const ok = await fetch(`${url}/api/status`, { headers: auth });
    assert.equal(ok.status, 200);
    assert.equal(((await ok.json()) as { result: { plugin: { version: string } } }).result.plugin.version, '1.0.0');
    const history = (await (await fetch(`${url}/api/history`, { headers: auth })).json()) as { result: { swaps: unknown[] } };
    assert.equal(history.result.swaps.length, 1);
    // The same command table as the admin socket: an upgrade without a supervisor is its coded refusal.
    const up = await fetch(`${url}/api/upgrade`, { method: 'POST', headers: auth });
    assert.equal(up.status, 501);
    assert.equal(await code(up), 'HOTLINE_E_CONFIG');
    const rb = await fetch(`${url}/api/rollback`, { method: 'POST', headers: auth });
    assert.equal(rb.status, 409);
    assert.equal(await code(rb), 'HOTLINE_E_NO_PREVIOUS');
    for (const [body, status] of [
      ['{"force":1}', 400],
      ['{"nope":true}', 400],
      ['[1]', 400],
      ['{', 400],
      ['x'.repeat(5000), 413],
    ] as const) {
      const res = await fetch(`${url}/api/reload`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body });
      assert.equal(res.status, status, body.slice(0, 20));
      assert.equal(await code(res), 'HOTLINE_E_ADMIN_REQUEST');
    }
    const forced = await fetch(`${url}/api/reload`, { method: 'POST', headers: auth, body: '{"force":true}' });
    assert.equal(((await forced.json()) as { result: { outcome: string } }).result.outcome, 'switched');
    assert.equal((await fetch(`${url}/api/status`, { method: 'DELETE', headers: auth })).status, 405);
    assert.equal((await fetch(`${url}/api/reload`, { headers: auth })).status, 405);
    assert.equal((await fetch(`${url}/api/nothing`, { headers: auth })).status, 404);
    assert.equal((await fetch(`${url}/nothing`)).status, 404);
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    assert.match(await (await fetch(`${url}/`)).text(), /<title>hotline/);
  } finally {
    await host.close();
    p.remove();
  }
});

test('binding beyond loopback without a token is refused; a bad address or token is a coded error', async () => {
  const p = pluginDir(counterPlugin('1.0.0'));
  try {
    await assert.rejects(createHost({ plugin: p.entry, logger: quietLogger, httpAdmin: '0.0.0.0:0' }), (e) => isHotlineError(e, 'HOTLINE_E_HTTP_ADMIN_EXPOSED'));
    await assert.rejects(createHost({ plugin: p.entry, logger: quietLogger, httpAdmin: 'localhost' }), (e) => isHotlineError(e, 'HOTLINE_E_HTTP_ADMIN'));
    await assert.rejects(createHost({ plugin: p.entry, logger: quietLogger, httpAdmin: { listen: '127.0.0.1:0', token: 'short' } }), (e) => isHotlineError(e, 'HOTLINE_E_HTTP_ADMIN'));
  } finally {
    p.remove();
  }
});

test('/readyz answers 503 while the host shuts down, and 200 before', async () => {
  const p = pluginDir(counterPlugin('1.0.0'));
  const host = await createHost({
    plugin: p.entry,
    logger: quietLogger,
    listen: [{ transport: 'tcp', port: 0, framing: 'lines' }],
    shutdownTimeout: 10_000,
    httpAdmin: '127.0.0.1:0',
  });
  const url = base(host);
  // A TCP client that keeps its half open after the host ends the stream: the shutdown waits for it to leave.
  const client = net.connect({ port: host.addresses()[0]!.port, allowHalfOpen: true });
  await new Promise((r) => client.once('connect', r));
  await until(() => host.status().connections === 1, 'the connection');
  try {
    assert.equal((await fetch(`${url}/readyz`)).status, 200);
    const ended = new Promise((r) => client.once('end', r));
    const closing = host.close();
    await ended;
    const res = await fetch(`${url}/readyz`);
    assert.equal(res.status, 503);
    assert.deepEqual(await res.json(), { ready: false, state: 'shutting-down', dependencies: {} });
    assert.equal((await fetch(`${url}/healthz`)).status, 200, 'alive while it shuts down');
    client.end();
    await closing;
  } finally {
    client.destroy();
    await host.close();
    p.remove();
  }
});

test('the event stream carries a reload: its phases, then the swap', async () => {
  const p = pluginDir(counterPlugin('1.0.0'));
  const host = await createHost({ plugin: p.entry, logger: quietLogger, httpAdmin: { listen: '127.0.0.1:0', token: TOKEN } });
  const ac = new AbortController();
  try {
    assert.equal((await fetch(`${base(host)}/api/events`)).status, 401);
    const res = await fetch(`${base(host)}/api/events`, { headers: auth, signal: ac.signal });
    assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    p.write(counterPlugin('1.0.1'));
    await host.reload();
    while (!/event: swap\n/.test(text)) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    const events = text
      .split('\n\n')
      .filter((f) => f.includes('data: '))
      .map((f) => JSON.parse(f.slice(f.indexOf('data: ') + 6)) as { type: string; data: { phase?: string; record?: { to: string } } });
    assert.deepEqual(
      events.filter((e) => e.type === 'phase').map((e) => e.data.phase),
      ['building', 'loading', 'preparing', 'suspending', 'migrating', 'switching', 'disposing'],
    );
    assert.equal(events.at(-1)!.type, 'swap');
    assert.equal(events.at(-1)!.data.record!.to, 'counter@1.0.1');
  } finally {
    ac.abort();
    await host.close();
    p.remove();
  }
});
