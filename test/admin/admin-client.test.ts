/**
 * The CLI's admin client reads what answers on the socket as untrusted: a response of the wrong shape (`null`, an
 * error without a code) is a HOTLINE_E_ADMIN rejection, not a TypeError thrown from a 'data' listener.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { adminRequest } from '../../src/admin/admin-client.js';
import { isHotlineError } from '../../src/errors.js';

test('a hostile admin server cannot make the client throw', { timeout: 20_000 }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'hotline-admin-client-'));
  const sock = path.join(dir, 'a.sock');
  const answers = ['null', '[]', '{"ok":false}', '{"ok":false,"error":null}', '{"ok":false,"error":{"code":1}}', '7'];
  let i = 0;
  const server = net.createServer((s) => {
    s.once('data', () => s.write(answers[i++]! + '\n'));
    s.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(sock, resolve));
  try {
    for (const a of answers) {
      await assert.rejects(adminRequest(sock, 'status', 5000), (err) => isHotlineError(err, 'HOTLINE_E_ADMIN'), a);
    }
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
