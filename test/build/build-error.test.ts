/**
 * What a user sees when the plugin does not build (issue 10, fault 9): the coded message with file:line:column and a
 * code frame, and nothing more: no hotline stack, no dangling `caused by: Error: Build failed with 1 error:`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatLine } from '../../src/log/pretty-log.js';
import { runHotline } from '../e2e/hotline-process.js';
import { pluginDir } from '../helpers/plugin-dir.js';

const BROKEN = `import { definePlugin } from 'hotline';
export default definePlugin({ name: 'x', version: '1', api: 1,
  onMessage(conn, data) { conn.send(data) + ; },
});
`;

test('hotline dev with a plugin that does not build: the coded message, file:line:column and a code frame only', async () => {
  const p = pluginDir(BROKEN);
  try {
    const r = await runHotline(['dev', p.entry, '--port', '0', '--admin', `${p.dir}/admin.sock`], p.dir);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^hotline: HOTLINE_E_BUILD: plugin\.ts:3:45: Unexpected ";"$/m);
    assert.match(r.stderr, /^ {2}3 \| {3}onMessage\(conn, data\) \{ conn\.send\(data\) \+ ; \},$/m);
    assert.match(r.stderr, /^ {4}\| {45}\^$/m, 'a caret under column 45');
    assert.doesNotMatch(r.stderr, /caused by|Build failed with/);
    assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack frames');
    // Once: the CLI's line. The host used to log the aborted first swap as well ("swap aborted, nothing keeps serving").
    assert.equal(r.stderr.match(/Unexpected ";"/g)?.length, 1, r.stderr);
    assert.equal(r.stdout.match(/Unexpected ";"/g), null, r.stdout);
  } finally {
    p.remove();
  }
});

test('hotline start with a plugin that does not build: the build error once, from the CLI', async () => {
  const p = pluginDir(BROKEN);
  try {
    const r = await runHotline(['start', p.entry, '--port', '0', '--admin', `${p.dir}/admin.sock`], p.dir);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^hotline: HOTLINE_E_BUILD: plugin\.ts:3:45: Unexpected ";"$/m);
    // The worker's log is JSON, where the quote is escaped.
    assert.equal((r.stdout + r.stderr).match(/Unexpected \\?";/g)?.length, 1, r.stdout + r.stderr);
  } finally {
    p.remove();
  }
});

test("the dev log prints a plugin error's stack, never a HotlineError's own", () => {
  const coded = JSON.stringify({ level: 50, time: 0, msg: 'HOTLINE_E_BUILD: x', err: { type: 'HotlineError', stack: 'HotlineError: x\n    at build (bundler.js:1:1)' } });
  assert.doesNotMatch(formatLine(coded), /at build/);
  const plugin = JSON.stringify({ level: 50, time: 0, msg: 'boom', code: 'HOTLINE_E_HANDLER', err: { type: 'Error', stack: 'Error: boom\n    at onMessage (plugin.ts:3:9)' } });
  assert.match(formatLine(plugin), /at onMessage \(plugin\.ts:3:9\)/);
});
