/**
 * `--http-admin`, `--metrics`, `--admin-token-file` (issue 14): where the token comes from, that one is made only for
 * loopback, and the info file `hotline upgrade` reads (0600).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { httpAdminFromFlags, readHttpAdminInfo, writeHttpAdminInfo } from '../../src/cli/http-admin-flags.js';
import { isHotlineError } from '../../src/errors.js';

test('the token comes from the file, else the environment, else is made (loopback only); the info file is 0600', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'hotline-flags-'));
  try {
    assert.equal(httpAdminFromFlags({}, {}), undefined);
    const file = path.join(dir, 'token');
    writeFileSync(file, 'from-file-0123456789abcdef\n');
    const fromFile = httpAdminFromFlags({ metrics: true, 'admin-token-file': file }, { HOTLINE_ADMIN_TOKEN: 'from-env-0123456789abcdef' })!;
    assert.deepEqual(fromFile.config, { address: { host: '127.0.0.1', port: 9464 }, token: 'from-file-0123456789abcdef' });
    assert.equal(fromFile.madeToken, false);
    const fromEnv = httpAdminFromFlags({ 'http-admin': '0.0.0.0:9100' }, { HOTLINE_ADMIN_TOKEN: 'from-env-0123456789abcdef' })!;
    assert.equal(fromEnv.config.token, 'from-env-0123456789abcdef');
    const made = httpAdminFromFlags({ 'http-admin': '127.0.0.1:0' }, {})!;
    assert.equal(made.madeToken, true);
    assert.ok(made.config.token!.length >= 16);
    assert.throws(() => httpAdminFromFlags({ 'http-admin': '0.0.0.0:9100' }, {}), (e) => isHotlineError(e, 'HOTLINE_E_HTTP_ADMIN_EXPOSED'));
    assert.throws(() => httpAdminFromFlags({ 'http-admin': 'nope' }, {}), (e) => isHotlineError(e, 'HOTLINE_E_HTTP_ADMIN'));
    assert.throws(() => httpAdminFromFlags({ metrics: true, 'admin-token-file': path.join(dir, 'missing') }, {}), (e) => isHotlineError(e, 'HOTLINE_E_HTTP_ADMIN'));

    const socket = path.join(dir, 'admin.sock');
    const info = writeHttpAdminInfo(socket, { host: '127.0.0.1', port: 9464 }, made);
    assert.equal(statSync(info).mode & 0o777, 0o600);
    assert.deepEqual(readHttpAdminInfo(socket, {}), { url: 'http://127.0.0.1:9464', token: made.config.token });
    writeHttpAdminInfo(socket, { host: '::1', port: 9 }, fromEnv);
    assert.deepEqual(readHttpAdminInfo(socket, { HOTLINE_ADMIN_TOKEN: 'env-token' }), { url: 'http://[::1]:9', token: 'env-token' });
    writeFileSync(info, '{"url":"javascript:alert(1)"}');
    assert.equal(readHttpAdminInfo(socket, {}), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
