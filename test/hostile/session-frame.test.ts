/**
 * Issue 9, item 1: malformed `hotline.v1` frames after the hello. `{"t":"m","s":1,"b":"!"}` made `atob` throw inside
 * a ws 'message' listener and killed the worker (every client on it got 1006). Each frame below must get a coded
 * close (1002) and a HOTLINE_E_SESSION_PROTOCOL report, and nothing else may notice.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket from 'ws';
import { SESSION_PROTOCOL } from '../../src/session/protocol.js';
import { underAttack } from './host-under-attack.js';

const HOSTILE_FRAMES = [
  '{"t":"m","s":1,"b":"!"}',
  '{"t":"m","s":1,"b":"QQ"}',
  '{"t":"m","s":1,"b":"Q Q=="}',
  '{"t":"m","s":1,"b":"QQ==","d":"x"}',
  '{"t":"m","s":1.5,"d":"x"}',
  '{"t":"m","s":"1","d":"x"}',
  '{"t":"m","s":1,"d":7}',
  '{"t":"a","a":-1}',
  '{"t":"a","a":1e300}',
  '{"t":"nope"}',
  '{"t":{"toString":1}}',
  '{"__proto__":{"t":"m"},"s":1,"d":"x"}',
  'null',
  '[]',
  '"m"',
  '{',
];

/** One session socket: hello, wait for the welcome, send `frame`; resolves with the close code. */
async function sendAfterHello(url: string, frame: string): Promise<number> {
  const ws = new WebSocket(url, [SESSION_PROTOCOL]);
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  ws.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.send(JSON.stringify({ t: 'hello', v: 1, token: null, rx: 0 }));
  await new Promise<void>((resolve) => ws.once('message', () => resolve()));
  ws.send(frame);
  return closed;
}

test('malformed session frames after the hello get a coded close; the worker and an unrelated client never notice', { timeout: 120_000 }, async () => {
  const rig = await underAttack(['--sessions']);
  try {
    for (const frame of HOSTILE_FRAMES) {
      const code = await sendAfterHello(rig.ready.url, frame);
      assert.equal(code, 1002, `close code for ${frame}`);
    }
    const reports = rig.proc.logs.filter((r) => r.code === 'HOTLINE_E_SESSION_PROTOCOL');
    assert.equal(reports.length, HOSTILE_FRAMES.length, 'one HOTLINE_E_SESSION_PROTOCOL report per frame');
    // A malformed first frame (in place of the hello) is refused the same way.
    const ws = new WebSocket(rig.ready.url, [SESSION_PROTOCOL]);
    ws.on('error', () => undefined);
    const closed = new Promise<number>((resolve) => ws.on('close', (c) => resolve(c)));
    ws.on('open', () => ws.send('{"t":"hello","v":1,"token":7,"rx":0}'));
    assert.equal(await closed, 1002);
    await rig.survived();
  } finally {
    await rig.close();
  }
});
