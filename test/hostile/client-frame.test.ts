/**
 * Issue 9, item 1, the client side: `hotline/client` reads a server's frames with the same decoder, so a hostile or
 * broken server must not throw into the application either. Before, `{"t":"m","s":1,"b":"!"}` after the welcome made
 * atob throw inside the ws 'message' listener: an uncaught exception in the client's process. Now the client drops
 * the socket (4000) and reconnects. A real ws server plays the hostile host.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebSocketServer } from 'ws';
import { connect } from '../../src/client/index.js';
import { SESSION_PROTOCOL } from '../../src/session/protocol.js';

const HOSTILE = ['{"t":"m","s":1,"b":"!"}', '{"t":"m","s":1,"b":"QQ"}', '{"t":"reconnect","delay":-5}', '{"t":"nope"}', 'null', '{"t":"welcome","token":"t","rx":0,"resumed":false,"replay":0,"lost":"x"}'];

test('a server sending malformed frames after the welcome makes the client reconnect, never throw', { timeout: 30_000 }, async () => {
  let n = 0;
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: () => SESSION_PROTOCOL });
  wss.on('connection', (ws) => {
    const frame = HOSTILE[n++ % HOSTILE.length]!;
    ws.once('message', () => {
      ws.send(JSON.stringify({ t: 'welcome', token: 'tok', rx: 0, resumed: false, replay: 0, lost: null }));
      ws.send(frame);
    });
  });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const port = (wss.address() as { port: number }).port;
  const closes: number[] = [];
  const client = connect(`ws://127.0.0.1:${port}/`, { backoff: { initialDelay: 1, maxDelay: 5 } });
  const messages: unknown[] = [];
  client.on('message', (m) => messages.push(m));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${closes.length} reconnects`)), 20_000);
      client.on('reconnecting', ({ code }) => {
        closes.push(code);
        if (closes.length === HOSTILE.length) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    assert.deepEqual(closes, HOSTILE.map(() => 4000), 'each malformed frame drops the socket with 4000');
    assert.deepEqual(messages, [], 'nothing malformed reaches the application');
  } finally {
    client.close();
    wss.close();
  }
});
