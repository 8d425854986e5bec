/**
 * conn.close() arguments (src/connection/close-codes.ts): a code or reason that cannot be sent throws
 * HOTLINE_E_CLOSE_CODE before anything changes, so the connection stays open and a later valid close works. Before,
 * the phase was set first and ws threw after it: the socket stayed open and every later close() did nothing.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { closeFrameProblem, isSendableCloseCode, MAX_CLOSE_REASON_BYTES } from '../../src/connection/close-codes.js';
import { createHost } from '../../src/index.js';
import { tcpClient, wsClient } from '../helpers/clients.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';

const require = createRequire(import.meta.url);
// ws' own check, read from the pinned ws (not in its exports map, hence the path).
const wsValidation = require(path.join(path.dirname(require.resolve('ws')), 'lib/validation.js')) as { isValidStatusCode(code: number): boolean };

/** `close <code> <reason>` (code `-` for none, a reason `x*N` for N x's) tries conn.close and replies with the outcome. */
const CLOSER = `
import { definePlugin } from 'hotline';
export default definePlugin({
  name: 'closer', version: '1', api: 1,
  onMessage(conn, data) {
    const [cmd, code, reason = ''] = String(data).split(' ');
    if (cmd !== 'close') { conn.send('echo:' + String(data)); return; }
    const r = reason.startsWith('x*') ? 'x'.repeat(Number(reason.slice(2))) : reason.replaceAll('_', ' ');
    try {
      conn.close(code === '-' ? undefined : Number(code), r);
      conn.send('not sent: the connection is closing');
    } catch (err) {
      conn.send('threw:' + (err as { code?: string }).code);
    }
  },
});
`;

test('the check agrees with ws for every integer code 0–65535, and refuses what is not an integer', () => {
  for (let code = 0; code <= 0xffff; code++) {
    assert.equal(isSendableCloseCode(code), wsValidation.isValidStatusCode(code), `code ${code}`);
  }
  for (const code of [1000.5, NaN, Infinity, -1000, 3000.1]) assert.equal(isSendableCloseCode(code), false, String(code));
  assert.match(closeFrameProblem('1000', '') ?? '', /cannot be sent/);
  assert.match(closeFrameProblem(1000, 42) ?? '', /must be a string/);
});

test('a reason is limited by its UTF-8 bytes, as in a close frame, for any string', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 130 }), (reason) => {
      const bytes = Buffer.byteLength(reason);
      assert.equal(closeFrameProblem(1000, reason) === undefined, bytes <= MAX_CLOSE_REASON_BYTES, `${bytes} bytes`);
    }),
    { numRuns: 2000 },
  );
  assert.equal(closeFrameProblem(4000, 'é'.repeat(61)), undefined, '122 bytes');
  assert.match(closeFrameProblem(4000, 'é'.repeat(62)) ?? '', /124 bytes/);
});

test('conn.close with an invalid code or reason throws HOTLINE_E_CLOSE_CODE and leaves the connection open; a valid close then works', async () => {
  const p = pluginDir(CLOSER);
  const host = await createHost({ plugin: p.entry, listen: [{ transport: 'ws' }, { transport: 'tcp' }], logger: quietLogger });
  try {
    const [wsAddr, tcpAddr] = host.addresses();
    const ws = await wsClient(wsAddr!.url);
    const tcp = await tcpClient(tcpAddr!.port);
    for (const c of [ws, tcp]) {
      for (const bad of ['close 1005', 'close 1006', 'close 1004', 'close 999', 'close 5000', 'close 2999', 'close 1000.5', 'close 1000 x*124', 'close 4000 x*200']) {
        c.send(bad);
        assert.equal(await c.inbox.next(), 'threw:HOTLINE_E_CLOSE_CODE', bad);
        c.send('ping');
        assert.equal(await c.inbox.next(), 'echo:ping', `${bad}: the connection still serves`);
      }
    }
    assert.equal(host.status().connections, 2, 'no zombie, no loss: both connections are open');
    ws.send('close 4001 done_here');
    assert.deepEqual(await ws.closed, { code: 4001, reason: 'done here' }, 'the valid close reached the client');
    tcp.send('close - x*123');
    await tcp.closed;
  } finally {
    await host.close();
    p.remove();
  }
});
