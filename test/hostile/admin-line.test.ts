/**
 * Issue 9, item 2: admin socket lines that are not well-formed requests. The line `null` killed the supervisor (it
 * read `req.cmd` of null), and the worker with it. Every such line must get a coded error reply, on a connection
 * that goes on answering, from a supervisor and worker that never restarted.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { underAttack } from './host-under-attack.js';

const HOSTILE_LINES = [
  'null',
  '[]',
  '"x"',
  '1',
  'true',
  '{}',
  '{',
  '{"id":1}',
  '{"cmd":"status"}',
  '{"id":1.5,"cmd":"status"}',
  '{"id":-1,"cmd":"status"}',
  '{"id":"1","cmd":"status"}',
  '{"id":1,"cmd":"status","extra":true}',
  '{"__proto__":{"cmd":"status"},"id":1}',
  '{"id":1,"cmd":"status","__proto__":{}}',
  '{"id":1,"cmd":"nope"}',
  '{"id":1,"cmd":["status"]}',
  'x'.repeat(200_000),
];

interface Reply {
  id: number;
  ok: boolean;
  error?: { code: string };
  result?: { supervisor?: { pid: number } };
}

test('malformed admin lines get coded error replies on a connection that keeps answering; nothing restarts', { timeout: 120_000 }, async () => {
  const rig = await underAttack();
  try {
    const socket = net.connect(rig.admin);
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const replies: Reply[] = [];
    let buf = '';
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => {
      buf += c;
      let nl: number;
      while ((nl = buf.indexOf('\n')) !== -1) {
        replies.push(JSON.parse(buf.slice(0, nl)) as Reply);
        buf = buf.slice(nl + 1);
      }
    });
    // All on one connection, pipelined, then a good request: it is still answered, and in order.
    socket.write(HOSTILE_LINES.join('\n') + '\n' + JSON.stringify({ id: 42, cmd: 'status' }) + '\n');
    const deadline = Date.now() + 20_000;
    while (replies.length < HOSTILE_LINES.length + 1 && Date.now() < deadline && !socket.destroyed) await new Promise((r) => setTimeout(r, 20));
    assert.equal(replies.length, HOSTILE_LINES.length + 1, 'one reply per line');
    for (const [i, r] of replies.slice(0, -1).entries()) {
      assert.equal(r.ok, false, `line ${i} (${HOSTILE_LINES[i]!.slice(0, 40)}) is refused`);
      assert.equal(r.error?.code, 'HOTLINE_E_ADMIN_REQUEST', `line ${i} (${HOSTILE_LINES[i]!.slice(0, 40)}) gets a coded reply`);
    }
    const last = replies.at(-1)!;
    assert.equal(last.id, 42);
    assert.equal(last.ok, true);
    assert.equal(last.result?.supervisor?.pid, rig.proc.child.pid);
    socket.destroy();
    await rig.survived();
  } finally {
    await rig.close();
  }
});
