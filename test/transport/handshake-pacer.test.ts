/**
 * The handshake pacer with a fake scheduler: at most perTurn steps a turn, the rest in order in later turns, the
 * queue's bound, a step that throws, and a new turn's room for steps that arrive after the queue emptied.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HandshakePacer } from '../../src/transport/handshake-pacer.js';

/** A scheduler whose turns the test runs by hand. */
function turns() {
  const pending: (() => void)[] = [];
  return {
    defer: (fn: () => void) => void pending.push(fn),
    /** Run the turn that is due; false when none is scheduled. */
    next(): boolean {
      const fn = pending.shift();
      if (!fn) return false;
      fn();
      return true;
    },
    get scheduled(): number {
      return pending.length;
    },
  };
}

test('perTurn steps run at once, the rest in later turns, in order', () => {
  const t = turns();
  const pacer = new HandshakePacer({ perTurn: 2, maxQueued: 100 }, t);
  const ran: number[] = [];
  for (let i = 0; i < 7; i++) assert.equal(pacer.pace(() => ran.push(i)), true);
  assert.deepEqual(ran, [0, 1], 'two run in the turn they arrive in');
  assert.equal(pacer.queued, 5);
  assert.equal(t.scheduled, 1, 'one turn scheduled, not one per step');
  t.next();
  assert.deepEqual(ran, [0, 1, 2, 3]);
  t.next();
  t.next();
  assert.deepEqual(ran, [0, 1, 2, 3, 4, 5, 6]);
  assert.equal(pacer.queued, 0);
  // A step arriving in the turn after the last one that ran waits for none: that turn has room.
  t.next();
  pacer.pace(() => ran.push(7));
  assert.deepEqual(ran.slice(-1), [7]);
  // Nothing runs and nothing stays scheduled once idle.
  while (t.next());
  assert.equal(t.scheduled, 0);
});

test('a step never jumps the queue: with steps waiting, a new one waits behind them even in a turn with room', () => {
  const t = turns();
  const pacer = new HandshakePacer({ perTurn: 1, maxQueued: 100 }, t);
  const ran: string[] = [];
  pacer.pace(() => ran.push('a'));
  pacer.pace(() => ran.push('b'));
  pacer.pace(() => ran.push('c'));
  t.next(); // runs b
  pacer.pace(() => ran.push('d')); // this turn already ran one
  t.next();
  t.next();
  assert.deepEqual(ran, ['a', 'b', 'c', 'd']);
});

test('past maxQueued a step is refused: false, counted, never run', () => {
  const t = turns();
  const pacer = new HandshakePacer({ perTurn: 1, maxQueued: 3 }, t);
  let ran = 0;
  const results = Array.from({ length: 10 }, () => pacer.pace(() => ran++));
  assert.deepEqual(results, [true, true, true, true, false, false, false, false, false, false]);
  assert.equal(pacer.refused, 6);
  while (t.next());
  assert.equal(ran, 4, 'the one run at once and the three queued');
});

test('a step that throws does not stall the ones behind it', () => {
  const t = turns();
  const pacer = new HandshakePacer({ perTurn: 1, maxQueued: 10 }, t);
  const ran: number[] = [];
  pacer.pace(() => ran.push(0));
  pacer.pace(() => {
    throw new Error('boom');
  });
  pacer.pace(() => ran.push(2));
  assert.throws(() => t.next(), /boom/);
  while (t.next());
  assert.deepEqual(ran, [0, 2]);
});

test('the bytes a waiting step holds are bounded too: past maxQueuedBytes it is refused, and a step that ran frees its bytes', () => {
  const t = turns();
  const pacer = new HandshakePacer({ perTurn: 1, maxQueued: 100, maxQueuedBytes: 10_000 }, t);
  let ran = 0;
  assert.equal(pacer.pace(() => ran++, 9_000), true, 'run at once: it holds nothing');
  assert.equal(pacer.pace(() => ran++, 6_000), true);
  assert.equal(pacer.pace(() => ran++, 4_000), true);
  assert.equal(pacer.queuedBytes, 10_000);
  assert.equal(pacer.pace(() => ran++, 1), false, 'one byte more than the budget');
  assert.equal(pacer.pace(() => ran++), true, 'a step without bytes still fits');
  assert.equal(pacer.refused, 1);
  t.next();
  assert.equal(pacer.queuedBytes, 4_000, 'the step that ran gave its bytes back');
  assert.equal(pacer.pace(() => ran++, 6_000), true);
  while (t.next());
  assert.equal(ran, 5);
  assert.equal(pacer.queuedBytes, 0);
});
