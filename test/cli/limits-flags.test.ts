/**
 * Issue 9 item 8 through the real bin: limits from flags and from --config reach the supervised worker of
 * `hotline start` and the in-process host of `hotline dev`; a bad file or value exits 1 with HOTLINE_E_CONFIG
 * naming the key, before anything listens. Run `npm run build` first when running this file alone.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import type WebSocket from 'ws';
import { HotlineProcess, runHotline } from '../e2e/hotline-process.js';
import { upgradeStatus, wsClient } from '../helpers/clients.js';
import { counterPlugin, pluginDir } from '../helpers/plugin-dir.js';

test('a bad --config or flag value exits 1 with HOTLINE_E_CONFIG naming the key', async () => {
  const p = pluginDir(counterPlugin('v1'));
  try {
    const admin = path.join(p.dir, 'admin.sock');
    p.write(JSON.stringify({ limits: { maxPayload: 1024, maxConnectionz: 3 } }), 'bad.json');
    for (const command of ['start', 'dev']) {
      const r = await runHotline([command, p.entry, '--port', '0', '--admin', admin, '--config', 'bad.json'], p.dir);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^hotline: HOTLINE_E_CONFIG: --config bad\.json: limits\.maxConnectionz: is not a known option/m);
      assert.equal(r.stdout, '', 'nothing listened');
    }
    p.write('{"hookTimeout": "5s"}', 'types.json');
    const types = await runHotline(['start', p.entry, '--port', '0', '--admin', admin, '--config', 'types.json'], p.dir);
    assert.equal(types.code, 1);
    assert.match(types.stderr, /HOTLINE_E_CONFIG: --config types\.json: hookTimeout: must be a positive number of ms, got "5s"/);
    const flag = await runHotline(['start', p.entry, '--port', '0', '--admin', admin, '--max-payload', '1MiB'], p.dir);
    assert.equal(flag.code, 1);
    assert.match(flag.stderr, /HOTLINE_E_CONFIG: --max-payload must be a positive integer \(bytes\), got "1MiB"/);
  } finally {
    p.remove();
  }
});

for (const command of ['start', 'dev']) {
  test(`hotline ${command}: limits from --config and flags (flags win) reach the host that serves`, async () => {
    const p = pluginDir(counterPlugin('v1'));
    p.write(JSON.stringify({ limits: { maxPayload: 64, maxConnections: 100 } }), 'hotline.json');
    const admin = path.join(p.dir, 'admin.sock');
    const { proc, ready } = await HotlineProcess.start([command, p.entry, '--port', '0', '--admin', admin, '--config', 'hotline.json', '--max-connections', '2'], p.dir);
    const open: WebSocket[] = [];
    try {
      // The flag's 2, not the file's 100: the third is refused.
      assert.equal(await upgradeStatus(ready.url, { keep: open }), 101);
      const c = await wsClient(ready.url);
      assert.equal(await upgradeStatus(ready.url, { keep: open }), 503);
      // The file's maxPayload: a 65-byte message closes the connection with 1009.
      c.send('x'.repeat(65));
      assert.equal((await c.closed).code, 1009);
    } finally {
      for (const ws of open) ws.terminate();
      proc.kill('SIGTERM');
      await proc.exited;
      p.remove();
    }
  });
}
