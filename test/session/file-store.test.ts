/**
 * FileSessionStore keeps the id of a session's connection (issue 10): through the log, through a compaction that
 * rewrites it, and into the next process that opens the directory.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { FileSessionStore } from '../../src/index.js';

test('the conn id of a session survives the log, a compaction and a reopen', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'hotline-store-'));
  try {
    const store = new FileSessionStore(dir, { compactBytes: 512 });
    store.write('s1', { create: true, connId: 'fa99fhegfu-1', touchedAt: Date.now() });
    store.write('s2', { create: true, touchedAt: Date.now() });
    store.write('s2', { connId: 'fa99fhegfu-2', touchedAt: Date.now() });
    // Enough writes to compact several times: the rewritten log must still say which connection each session had.
    for (let i = 1; i <= 50; i++) store.write('s1', { out: [i, 'x'.repeat(40)], touchedAt: Date.now() });
    store.close();
    const reopened = new FileSessionStore(dir);
    assert.equal(reopened.get('s1')?.connId, 'fa99fhegfu-1');
    assert.equal(reopened.get('s2')?.connId, 'fa99fhegfu-2');
    assert.equal(reopened.get('s1')?.outSeq, 50);
    reopened.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a session's rooms survive the log, a compaction and a reopen; a leave of the last one is kept too", () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'hotline-store-'));
  try {
    const store = new FileSessionStore(dir, { compactBytes: 512 });
    store.write('s1', { create: true, touchedAt: Date.now() });
    store.write('s1', { rooms: ['lobby'], touchedAt: Date.now() });
    store.write('s1', { rooms: ['lobby', 'zone é'], touchedAt: Date.now() });
    store.write('s2', { create: true, rooms: ['a'], touchedAt: Date.now() });
    store.write('s2', { rooms: [], touchedAt: Date.now() });
    for (let i = 1; i <= 50; i++) store.write('s1', { out: [i, 'x'.repeat(40)], touchedAt: Date.now() });
    store.close();
    const reopened = new FileSessionStore(dir);
    assert.deepEqual(reopened.get('s1')?.rooms, ['lobby', 'zone é']);
    assert.deepEqual(reopened.get('s2')?.rooms ?? [], []);
    reopened.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
