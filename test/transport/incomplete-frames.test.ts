/**
 * The partial-frame budget and timeout (src/transport/incomplete-frames.ts) with a fake clock; the real-socket cases
 * are in test/hostile/partial-frames.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HotlineError } from '../../src/errors.js';
import { ABANDON_PER_SWEEP, type IncompleteHolder, IncompleteFrames } from '../../src/transport/incomplete-frames.js';

function holder(): IncompleteHolder & { closedWith?: string } {
  return {
    incompleteBytes: 0,
    incompleteSince: 0,
    abandon(this: IncompleteHolder & { closedWith?: string }, err: HotlineError) {
      assert.equal(this.closedWith, undefined, 'abandoned once');
      this.closedWith = err.code;
    },
  };
}

test('the holder that would take the total over maxIncompleteBytes is abandoned, and the total stays within it', () => {
  const frames = new IncompleteFrames({ frameTimeout: 1000, maxIncompleteBytes: 100 }, { now: () => 0 });
  const [a, b] = [holder(), holder()];
  assert.equal(frames.update(a, 60, true), true);
  assert.equal(frames.update(b, 50, true), false);
  assert.equal(b.closedWith, 'HOTLINE_E_INCOMPLETE_BUDGET');
  assert.equal(frames.totalBytes, 60);
  assert.equal(frames.update(a, 0, true), true, 'back at a boundary');
  assert.equal(frames.totalBytes, 0);
  assert.equal(frames.holders, 0);
  frames.close();
});

test('stalled holders are closed at most ABANDON_PER_SWEEP per sweep, so their reconnects do not come in one burst', () => {
  let now = 0;
  const frames = new IncompleteFrames({ frameTimeout: 1000, maxIncompleteBytes: 1e9 }, { now: () => now });
  const stalled = Array.from({ length: ABANDON_PER_SWEEP * 2 + 3 }, holder);
  for (const h of stalled) frames.update(h, 10, true);
  now = 500;
  const live = holder();
  frames.update(live, 10, true);
  now = 1000;
  const closedAfter = (): number => stalled.filter((h) => h.closedWith === 'HOTLINE_E_FRAME_TIMEOUT').length;
  assert.equal(frames.sweep(), true, 'more are left');
  assert.equal(closedAfter(), ABANDON_PER_SWEEP);
  assert.equal(frames.sweep(), true);
  assert.equal(closedAfter(), ABANDON_PER_SWEEP * 2);
  assert.equal(frames.sweep(), false, 'none left');
  assert.equal(closedAfter(), stalled.length);
  assert.equal(live.closedWith, undefined, 'a holder that got bytes within frameTimeout stays');
  assert.equal(frames.holders, 1);
  frames.close();
});
