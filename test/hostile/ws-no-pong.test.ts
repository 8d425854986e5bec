/**
 * Issue 9, item 5: a WebSocket client that never answers pings is cut off after pongTimeout
 * (HOTLINE_E_PONG_TIMEOUT), while a client that does answer stays connected through the same pings.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type Host, createHost } from '../../src/index.js';
import { wsClient } from '../helpers/clients.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';
import { Pinger, SLOW_PLUGIN, errorCodes, waitUntil } from './hostile-rig.js';

const dir = pluginDir(SLOW_PLUGIN);
let host: Host;
let codes: string[];

before(async () => {
  host = await createHost({ plugin: dir.entry, logger: quietLogger, limits: { pingInterval: 200, pongTimeout: 200 } });
  codes = errorCodes(host);
});

after(async () => {
  await host.close();
  dir.remove();
});

test('a client that never pongs is terminated with HOTLINE_E_PONG_TIMEOUT; one that pongs stays', async () => {
  const url = host.addresses()[0]!.url;
  const pinger = await Pinger.start(url);
  const mute = await wsClient(url, { autoPong: false });
  let pings = 0;
  mute.ws.on('ping', () => pings++);
  const { code } = await Promise.race([
    mute.closed,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the mute client was never cut off')), 10_000)),
  ]);
  // Terminated, no close frame: the client sees an abnormal closure.
  assert.equal(code, 1006);
  assert.ok(pings >= 1, 'the host never pinged');
  assert.ok(codes.includes('HOTLINE_E_PONG_TIMEOUT'), `codes: ${codes.join(', ')}`);
  // The answering client lives through several more ping rounds (400 ms each): 40 of its own pings, 2 s.
  const s0 = pinger.sent;
  await waitUntil(() => pinger.sent >= s0 + 40, 10_000, 'more ping rounds');
  assert.equal(await pinger.stop(), 0, 'the answering client lost replies');
  assert.equal(codes.filter((c) => c === 'HOTLINE_E_PONG_TIMEOUT').length, 1, 'the answering client was cut off too');
});
