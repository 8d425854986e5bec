/**
 * A WebSocket upgrade the host refuses (429 over handshakeRatePerIp, 503 over maxConnectionsPerIp or at
 * maxConnections) whose client resets the connection instead of reading the answer. Node's HTTP server takes its own
 * error listener off a socket at the upgrade, so the refusal must add one: before, the ECONNRESET of the write was an
 * unhandled 'error' event, and the worker died with every client on it (seen in bench R2's hello-then-drop run).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { createHost } from '../../src/index.js';
import { wsClient } from '../helpers/clients.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';
import { ECHO_PLUGIN } from './host-under-attack.js';

const REQUEST = (port: number) =>
  `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';

/** One upgrade from `from`, reset (RST) right after the request, or once the first bytes of the answer come. */
function upgradeThenReset(port: number, from: string, early: boolean): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress: from });
    s.on('error', () => undefined);
    s.once('close', () => resolve());
    s.once('connect', () => {
      s.write(REQUEST(port));
      if (early) s.resetAndDestroy();
    });
    s.once('data', () => s.resetAndDestroy());
  });
}

test('refused WebSocket upgrades whose clients reset the connection are no escaped error, and the host serves on', async () => {
  const p = pluginDir(ECHO_PLUGIN);
  const host = await createHost({ plugin: p.entry, logger: quietLogger, watch: false, limits: { handshakeRatePerIp: 1 } });
  const escaped: unknown[] = [];
  const onEscape = (err: unknown) => escaped.push(err);
  process.on('uncaughtException', onEscape);
  try {
    const url = host.addresses()[0]!.url;
    const port = Number(new URL(url).port);
    // In waves of 50: a refusal is held for its Retry-After second (src/transport/refusal-hold.ts), so the late resets
    // of a wave come together when the hold answers them, and the early ones meet an answer written to a dead socket.
    for (let wave = 0; wave < 4; wave++) await Promise.all(Array.from({ length: 50 }, (_, i) => upgradeThenReset(port, '127.0.0.9', i % 2 === 0)));
    const ws = await wsClient(url);
    ws.send('still here');
    await ws.inbox.next();
    ws.ws.close();
    assert.deepEqual(escaped.map(String), [], 'no error escaped');
  } finally {
    process.off('uncaughtException', onEscape);
    await host.close();
    p.remove();
  }
});
