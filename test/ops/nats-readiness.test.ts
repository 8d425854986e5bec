/**
 * Issue 14: where a dependency such as NATS is down, /readyz says "degraded" in its body (and stays 200: the node
 * still serves, its session writes wait locally) and /metrics shows hotline_nats_up 0 and the writes deferred. A real
 * nats-server of the test's own, killed and started again on the same port.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createHost } from '../../src/index.js';
import { connect, type HotlineClient } from '../../src/client/index.js';
import { TestNatsServer } from '../helpers/nats-server.js';
import { parseExposition } from '../helpers/prom-text.js';
import { quietLogger } from '../helpers/quiet-logger.js';
import { until } from '../helpers/until.js';
import { pluginDir } from '../helpers/plugin-dir.js';

const ECHO = `
import { definePlugin } from 'hotline';
export default definePlugin({ name: 'echo', version: '1', api: 1, onMessage(conn, data) { conn.send(data); } });
`;

interface Ready {
  ready: boolean;
  state: string;
  degraded?: string[];
  dependencies: Record<string, boolean>;
}

test('NATS down: /readyz is 200 with state "degraded", hotline_nats_up is 0 and writes are deferred; back up, both recover', async () => {
  const nats = await new TestNatsServer().start();
  const p = pluginDir(ECHO);
  const host = await createHost({
    plugin: p.entry,
    logger: quietLogger,
    sessions: { store: 'nats', servers: nats.url, bucket: 'readiness' },
    httpAdmin: { listen: '127.0.0.1:0' },
  });
  const a = host.httpAdminAddress!;
  const get = async (path: string) => fetch(`http://${a.host}:${a.port}${path}`);
  const readyz = async () => {
    const res = await get('/readyz');
    return { status: res.status, body: (await res.json()) as Ready };
  };
  const metrics = async () => parseExposition(await (await get('/metrics')).text());
  let client: HotlineClient | undefined;
  try {
    assert.deepEqual(await readyz(), { status: 200, body: { ready: true, state: 'ready', dependencies: { nats: true } } });
    assert.equal((await metrics()).sum('hotline_nats_up'), 1);

    await nats.kill();
    await until(async () => (await readyz()).body.state === 'degraded', 'readyz to say degraded', 20_000);
    const down = await readyz();
    assert.deepEqual(down, { status: 200, body: { ready: true, state: 'degraded', degraded: ['nats'], dependencies: { nats: false } } });
    assert.equal((await metrics()).sum('hotline_nats_up'), 0);
    // A session client still gets served meanwhile; its writes wait locally and are counted.
    client = connect(host.addresses()[0]!.url);
    const reply = new Promise<string>((resolve) => client!.on('message', (d) => resolve(String(d))));
    client.send('while degraded');
    assert.equal(await reply, 'while degraded');
    await until(async () => (await metrics()).sum('hotline_session_store_deferred_writes_total') > 0, 'a deferred write to be counted', 10_000);

    await nats.start();
    await until(async () => (await readyz()).body.state === 'ready', 'readyz to say ready again', 30_000);
    assert.equal((await metrics()).sum('hotline_nats_up'), 1);
  } finally {
    client?.close();
    await host.close();
    await nats.stop();
    p.remove();
  }
});
