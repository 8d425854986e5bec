/**
 * The pieces of the poison-message rule (issue 11) that the end-to-end test (poison-message.test.ts) cannot reach
 * one by one: the file store keeps a restored session's mark across a reopen (and its compaction) while the marked
 * message is unhandled, and forgets it once handled; the `drop` frame is decoded totally, hostile ones refused.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { HotlineError } from '../../src/errors.js';
import { FileSessionStore } from '../../src/session/file-store.js';
import { decodeFrame } from '../../src/session/protocol.js';

test('the file store keeps a mark on an unhandled message across a reopen, and drops a stale one at compaction', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'hotline-mark-'));
  try {
    let st = new FileSessionStore(dir);
    st.write('live', { create: true, touchedAt: 1 });
    st.write('live', { inSeq: 4, touchedAt: 2 });
    st.write('live', { suspect: 5, touchedAt: 3 });
    st.write('done', { create: true, touchedAt: 1 });
    st.write('done', { suspect: 1, touchedAt: 2 });
    st.write('done', { inSeq: 1, touchedAt: 3 });
    st.close();
    st = new FileSessionStore(dir); // replays the log, then compacts it
    assert.equal(st.get('live')?.suspect, 5, 'still unhandled: the mark holds');
    st.close();
    st = new FileSessionStore(dir); // reads the compacted log
    assert.equal(st.get('live')?.suspect, 5);
    assert.equal(st.get('done')?.suspect, undefined, 'handled since: compaction forgets the mark');
    st.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('drop frames: decoded when well formed, HOTLINE_E_SESSION_PROTOCOL otherwise', () => {
  const ok = { t: 'drop', s: 3, code: 'HOTLINE_E_POISON_MESSAGE', message: 'dropped' };
  assert.deepEqual(decodeFrame(JSON.stringify({ ...ok, extra: 1 })), ok);
  const hostile = [
    { ...ok, s: 0 },
    { ...ok, s: -1 },
    { ...ok, s: 1.5 },
    { ...ok, s: '3' },
    { ...ok, code: 'HOTLINE_E_SESSION_EXPIRED' },
    { ...ok, code: undefined },
    { ...ok, message: 'x'.repeat(1025) },
    { ...ok, message: 7 },
  ];
  for (const f of hostile) {
    const r = decodeFrame(JSON.stringify(f));
    assert.ok(r instanceof HotlineError && r.code === 'HOTLINE_E_SESSION_PROTOCOL', JSON.stringify(f).slice(0, 80));
  }
});
