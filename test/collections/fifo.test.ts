import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Fifo } from '../../src/collections/fifo.js';

test('a Fifo hands out what was pushed, in order, through any mix of pushes and shifts (model: an array)', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.integer(), fc.constant<'shift'>('shift')), { maxLength: 5000 }), (ops) => {
      const q = new Fifo<number>();
      const model: number[] = [];
      for (const op of ops) {
        if (op === 'shift') assert.equal(q.shift(), model.shift());
        else {
          q.push(op);
          model.push(op);
        }
        assert.equal(q.size, model.length);
        assert.equal(q.peek(), model[0]);
      }
      assert.deepEqual(q.toArray(), model);
      assert.deepEqual([...q], model);
    }),
    { numRuns: 200 },
  );
});

test('a Fifo keeps its order across compactions (100,000 entries through a queue of up to 50,000)', () => {
  const q = new Fifo<number>();
  let next = 0;
  let expected = 0;
  for (let i = 0; i < 50_000; i++) {
    q.push(next++);
    q.push(next++);
    assert.equal(q.shift(), expected++);
  }
  while (q.size > 0) assert.equal(q.shift(), expected++);
  assert.equal(expected, 100_000);
});

test('filter keeps the accepted entries in order and returns the others; clear empties', () => {
  const q = new Fifo<number>();
  for (let i = 0; i < 10; i++) q.push(i);
  q.shift();
  assert.deepEqual(q.filter((n) => n % 2 === 0), [1, 3, 5, 7, 9]);
  assert.deepEqual(q.toArray(), [2, 4, 6, 8]);
  q.clear();
  assert.equal(q.size, 0);
  assert.equal(q.shift(), undefined);
});
