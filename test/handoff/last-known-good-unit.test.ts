/**
 * The supervisor's last-known-good record (src/handoff/last-known-good.ts) with a clock advanced by hand, and the
 * check of a build that crosses IPC (src/handoff/build-report.ts) against hostile input. The real-process test is
 * last-known-good.test.ts.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import type { Bundle } from '../../src/build/bundler.js';
import type { Clock } from '../../src/handoff/clock.js';
import { checkBuild, hashOf } from '../../src/handoff/build-report.js';
import { LastKnownGood } from '../../src/handoff/last-known-good.js';

class HandClock implements Clock {
  t = 0;
  #timers = new Map<number, { at: number; fn: () => void }>();
  #id = 0;
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    this.#timers.set(++this.#id, { at: this.t + ms, fn });
    return this.#id;
  }
  clearTimeout(id: unknown): void {
    this.#timers.delete(id as number);
  }
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const next = [...this.#timers.entries()].filter(([, x]) => x.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!next) break;
      this.#timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
}

const ENTRY = path.resolve('plugin.ts');

function build(code: string): Bundle {
  return { code, map: '{}', entry: ENTRY, inputs: [ENTRY], hash: hashOf(code) };
}

test('the first build is known good at once; a later one after its window, if its worker still beats', () => {
  const clock = new HandClock();
  let beating = true;
  const lkg = new LastKnownGood(clock, 1_000, () => beating, 100);
  const a = build('a');
  const b = build('b');
  lkg.serving(a);
  assert.equal(lkg.build, a);
  assert.equal(lkg.status().good?.how, 'first');
  lkg.serving(b);
  assert.equal(lkg.build, a, 'b is on probation: a restart still goes back to a');
  assert.equal(lkg.status().probation?.hash, b.hash);
  beating = false;
  clock.advance(1_000);
  assert.equal(lkg.build, a, 'a silent worker at the end of the window is not promoted');
  beating = true;
  clock.advance(100);
  assert.equal(lkg.build, b);
  assert.deepEqual(lkg.status().good, { hash: b.hash, since: 1_100, how: 'probation' });
  assert.equal(lkg.status().probation, undefined);
  assert.equal(lkg.died('HOTLINE_E_WORKER_EXIT', 7), undefined, 'a death of a known good build is no fallback');
  assert.equal(lkg.build, b);
});

test('a death during probation falls back to the known good build and rejects the new one', () => {
  const clock = new HandClock();
  const lkg = new LastKnownGood(clock, 1_000, () => true, 100);
  const a = build('a');
  const b = build('b');
  lkg.serving(a);
  lkg.serving(b);
  clock.advance(999);
  const f = lkg.died('HOTLINE_E_WORKER_HUNG', 42);
  assert.deepEqual({ ...f, message: undefined }, { code: 'HOTLINE_E_WORKER_LKG', message: undefined, from: b.hash, to: a.hash, cause: 'HOTLINE_E_WORKER_HUNG', pid: 42, at: 999 });
  assert.equal(lkg.build, a);
  clock.advance(10);
  assert.equal(lkg.build, a, 'the window of the dead build never promotes it');
  assert.deepEqual(lkg.status().rejected, [b.hash]);
  // A rollback in the worker (back to the known good hash) ends the probation without a promotion.
  lkg.serving(b);
  lkg.serving(a);
  assert.equal(lkg.status().probation, undefined);
  clock.advance(2_000);
  assert.equal(lkg.build, a);
});

test('probation off (window 0): every build the worker serves is known good at once', () => {
  const lkg = new LastKnownGood(new HandClock(), 0, () => true, 100);
  lkg.serving(build('a'));
  const b = build('b');
  lkg.serving(b);
  assert.equal(lkg.build, b);
  assert.equal(lkg.died('HOTLINE_E_WORKER_EXIT', 1), undefined);
});

test('checkBuild refuses what does not hold together, with HOTLINE_E_WORKER_BUILD', () => {
  const good = build('module.exports = 1');
  assert.deepEqual(checkBuild({ ...good }, ENTRY), good);
  const refused: Array<[string, unknown]> = [
    ['not an object', 'x'],
    ['an array', [good]],
    ['a hash of the wrong form', { ...good, hash: 'ZZ' }],
    ['code that does not hash to its hash', { ...good, code: 'module.exports = 2' }],
    ['empty code', { ...good, code: '', hash: hashOf('') }],
    ['a build of another entry', { ...good, entry: '/elsewhere/plugin.ts' }],
    ['inputs that are not paths', { ...good, inputs: [1] }],
    ['a map that is not text', { ...good, map: {} }],
    ['fields only on the prototype', Object.create(good)],
  ];
  for (const [why, x] of refused) assert.throws(() => checkBuild(x, ENTRY), { code: 'HOTLINE_E_WORKER_BUILD' }, why);
});
