/**
 * Session metrics (issue 14): a client cut off by a proxy resumes (hotline_session_resumes_total), and a replayed
 * token is refused with a new session (hotline_sessions_lost_total{code}).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect, type HotlineClient } from '../../src/client/index.js';
import { createHost } from '../../src/index.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { parseExposition } from '../helpers/prom-text.js';
import { quietLogger } from '../helpers/quiet-logger.js';
import { CuttingProxy, streamPlugin } from '../session/fixtures.js';

function once(client: HotlineClient, event: 'open' | 'resumed' | 'lost-session'): Promise<unknown> {
  return new Promise((resolve) => {
    const off = client.on(event, (info: unknown) => {
      off();
      resolve(info);
    });
  });
}

test('a resume and a lost session are counted', async () => {
  const p = pluginDir(streamPlugin(1000));
  const host = await createHost({ plugin: p.entry, sessions: true, metrics: true, logger: quietLogger });
  const proxy = new CuttingProxy(host.addresses()[0]!.port);
  const port = await proxy.listen();
  const clients: HotlineClient[] = [];
  try {
    const a = connect(`ws://127.0.0.1:${port}/`, { backoff: { initialDelay: 20, maxDelay: 100 } });
    clients.push(a);
    await once(a, 'open');
    const first = a.token!;
    const resumed = once(a, 'resumed');
    proxy.cutOnNextChunk();
    a.send('1');
    await resumed;
    // The first token was rotated at that resume: replayed, it is refused and its holder gets a new session.
    const b = connect(host.addresses()[0]!.url, { resume: { token: first, received: 0 } });
    clients.push(b);
    assert.equal(((await once(b, 'lost-session')) as { code: string }).code, 'HOTLINE_E_SESSION_TOKEN');
    const m = parseExposition(await host.metrics());
    assert.equal(m.sum('hotline_session_resumes_total'), 1);
    assert.equal(m.sum('hotline_sessions_lost_total', { code: 'HOTLINE_E_SESSION_TOKEN' }), 1);
    assert.equal(m.sum('hotline_sessions', { state: 'attached' }), 2);
  } finally {
    for (const c of clients) c.close();
    await proxy.close();
    await host.close();
    p.remove();
  }
});
