import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createHost } from '../../src/index.js';
import { tcpClient, wsClient } from '../helpers/clients.js';
import { counterPlugin, pluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';

test('a host serves ws and tcp, swaps on reload, and keeps state', async () => {
  const p = pluginDir(counterPlugin('v1'));
  const host = await createHost({
    plugin: p.entry,
    listen: [{ transport: 'ws' }, { transport: 'tcp' }],
    logger: quietLogger,
  });
  try {
    const [wsAddr, tcpAddr] = host.addresses();
    const ws = await wsClient(wsAddr!.url);
    const tcp = await tcpClient(tcpAddr!.port);
    ws.send('a');
    assert.equal(await ws.inbox.next(), 'v1:1:1|a');
    tcp.send('b');
    assert.equal(await tcp.inbox.next(), 'v1:1:2|b');
    p.write(counterPlugin('v2'));
    const record = await host.reload();
    assert.equal(record.outcome, 'switched');
    ws.send('c');
    assert.equal(await ws.inbox.next(), 'v2:2:3|c');
    assert.equal(host.status().connections, 2);
    ws.ws.close();
    tcp.socket.end();
  } finally {
    await host.close();
    p.remove();
  }
});
