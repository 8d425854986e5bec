/**
 * The partial-frame budget and timeout (src/transport/incomplete-frames.ts) with a fake clock; the real-socket cases
 * are in test/hostile/partial-frames.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HotlineError } from '../../src/errors.js';
import { ABANDON_PER_SWEEP, type IncompleteHolder, IncompleteFrames } from '../../src/transport/incomplete-frames.js';
import { until } from '../helpers/until.js';

function holder(): IncompleteHolder & { closedWith?: string } {
  return {
    incompleteBytes: 0,
    incompleteSince: 0,
    remoteAddress: '127.0.0.1',
    holdBack() {},
    release() {},
    abandon(this: IncompleteHolder & { closedWith?: string }, err: HotlineError) {
      assert.equal(this.closedWith, undefined, 'abandoned once');
      this.closedWith = err.code;
    },
  };
}

test('the holder that would take the total over maxIncompleteBytes is abandoned, and the total stays within it', () => {
  const frames = new IncompleteFrames({ frameTimeout: 1000, maxIncompleteBytes: 100, maxIncompleteBytesPerIp: Infinity }, { now: () => 0 });
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
  const frames = new IncompleteFrames({ frameTimeout: 1000, maxIncompleteBytes: 1e9, maxIncompleteBytesPerIp: Infinity }, { now: () => now });
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

type Shared = ReturnType<typeof holder> & { remoteAddress: string; backs: number; releases: number };

function from(address: string): Shared {
  const h = holder() as Shared;
  Object.assign(h, { remoteAddress: address, backs: 0, releases: 0 });
  h.holdBack = function (this: Shared) {
    this.backs++;
  };
  h.release = function (this: Shared) {
    this.releases++;
  };
  return h;
}

test('maxIncompleteBytesPerIp: the read that takes an address past its share holds that socket back; other addresses are untouched', () => {
  const frames = new IncompleteFrames({ frameTimeout: 1000, maxIncompleteBytes: 1e9, maxIncompleteBytesPerIp: 100 }, { now: () => 0 });
  const [a1, a2, a3] = [from('10.0.0.1'), from('10.0.0.1'), from('10.0.0.1')];
  const other = from('10.0.0.2');
  frames.update(a1, 60, true);
  assert.equal(a1.backs, 0, 'within the share');
  frames.update(a2, 50, true);
  assert.equal(a2.backs, 1, 'past the share: held back');
  assert.equal(frames.totalBytes, 110, 'what was read stays counted');
  frames.update(a3, 10, true);
  assert.equal(a3.backs, 1);
  frames.update(a3, 20, true);
  assert.equal(a3.backs, 1, 'held back once, however often it reads');
  frames.update(other, 90, true);
  assert.equal(other.backs, 0, 'another address has its own share');
  assert.equal(frames.heldBack, 2);
  assert.equal(frames.heldBackTotal, 2);
  frames.close();
});

test('maxIncompleteBytesPerIp: each partial frame gone releases one held-back socket, longest first, with its timeout restarted', () => {
  let now = 0;
  const frames = new IncompleteFrames({ frameTimeout: 1000, maxIncompleteBytes: 1e9, maxIncompleteBytesPerIp: 100 }, { now: () => now });
  const hs = Array.from({ length: 4 }, () => from('10.0.0.1'));
  for (const h of hs) frames.update(h, 60, true); // 60 within; then 120, 180, 240: three held back
  assert.deepEqual(hs.map((h) => h.backs), [0, 1, 1, 1]);
  now = 700;
  // The first completes its frame: 180 left, still past the share, so nothing is released.
  frames.update(hs[0]!, 0, true);
  assert.deepEqual(hs.map((h) => h.releases), [0, 0, 0, 0]);
  // The second is closed: 120 left, still past. The third times out... via the sweep below.
  frames.forget(hs[1]!);
  assert.deepEqual(hs.map((h) => h.releases), [0, 0, 0, 0], 'a forgotten holder is never released');
  frames.forget(hs[2]!);
  assert.equal(frames.totalBytes, 60);
  assert.deepEqual(hs.map((h) => h.releases), [0, 0, 0, 1], 'the one left is released once the address is within its share');
  assert.equal(hs[3]!.incompleteSince, 700, 'held back by the host, not stalled by its client: the clock starts again');
  assert.equal(frames.heldBack, 0);
  frames.forget(hs[3]!);
  assert.equal(frames.addresses, 0, 'an address with nothing held is forgotten');
  frames.close();
});

test('maxIncompleteBytesPerIp: held-back sockets still time out, and those gone let the next in line read', () => {
  let now = 0;
  const frames = new IncompleteFrames({ frameTimeout: 1000, maxIncompleteBytes: 1e9, maxIncompleteBytesPerIp: 100 }, { now: () => now });
  const hs = Array.from({ length: ABANDON_PER_SWEEP + 2 }, () => from('10.0.0.1'));
  for (const h of hs) frames.update(h, 30, true); // 30, 60, 90 within; the other 7 held back
  assert.equal(frames.heldBack, hs.length - 3);
  now = 1000;
  frames.sweep();
  const closed = hs.filter((h) => h.closedWith === 'HOTLINE_E_FRAME_TIMEOUT');
  const released = hs.filter((h) => h.releases > 0);
  assert.equal(closed.length, ABANDON_PER_SWEEP, 'held back or not, a stalled frame times out');
  assert.ok(released.length > 0, 'the address got below its share: the next in line reads again');
  for (const h of released) {
    assert.equal(h.closedWith, undefined, 'a released socket is not closed in the same sweep');
    assert.equal(h.incompleteSince, 1000);
  }
  assert.ok(frames.totalBytes <= 100 + 30, `${frames.totalBytes} bytes left`);
  frames.close();
});

test('maxIncompleteBytesPerIp off (Infinity): nothing is held back, no address is tracked', () => {
  const frames = new IncompleteFrames({ frameTimeout: 1000, maxIncompleteBytes: 1e9, maxIncompleteBytesPerIp: Infinity }, { now: () => 0 });
  const hs = Array.from({ length: 10 }, () => from('10.0.0.1'));
  for (const h of hs) frames.update(h, 1e6, true);
  assert.equal(hs.reduce((n, h) => n + h.backs, 0), 0);
  assert.equal(frames.addresses, 0);
  frames.close();
});

test('maxIncompleteBytesPerIp: a socket that opens while its address is past its share is held back before its first read, and released in turn', async () => {
  const frames = new IncompleteFrames({ frameTimeout: 1000, maxIncompleteBytes: 1e9, maxIncompleteBytesPerIp: 100 }, { now: () => 0 });
  const a = from('10.0.0.1');
  frames.update(a, 150, true); // past the share (held back itself)
  const late = [from('10.0.0.1'), from('10.0.0.1'), from('10.0.0.1')];
  for (const h of late) frames.opened(h);
  assert.deepEqual(late.map((h) => h.backs), [1, 1, 1], 'held back at open');
  const elsewhere = from('10.0.0.2');
  frames.opened(elsewhere);
  assert.equal(elsewhere.backs, 0, 'another address is read at once');
  // The stalled frame goes: the first in line is released at once, the others one at a time after it.
  frames.forget(a);
  assert.deepEqual(late.map((h) => h.releases), [1, 0, 0]);
  await until(() => late.every((h) => h.releases === 1), 'every late socket to be released, one after another', 5000);
  // One that closes while it waits leaves the line.
  frames.update(a, 150, true);
  const gone = from('10.0.0.1');
  frames.opened(gone);
  frames.forget(gone);
  frames.forget(a);
  assert.equal(gone.releases, 0, 'a closed socket is never released');
  assert.equal(frames.addresses, 0);
  frames.close();
});
