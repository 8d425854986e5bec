/**
 * A connection's inbound queue must not keep what it has handed out. Under a steady stream into an async handler
 * the queue is never empty, so it is never reset: the messages already handled stayed referenced from the front of
 * its array, and memory grew with every message for as long as the stream lasted (found moving the queue onto
 * Fifo). The dispatcher and a connection themselves, with a handler the test settles by hand.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Connection } from '../../src/connection/connection.js';
import { type DispatchTarget, Dispatcher } from '../../src/connection/dispatcher.js';
import { fakeLink } from '../helpers/fake-link.js';

const link = fakeLink();

const gc = (globalThis as { gc?: () => void }).gc;
const MESSAGES = 6_000;
const SIZE = 10 * 1024;

test('a queue that never empties does not keep the messages it has handed out', { skip: gc ? false : 'needs --expose-gc' }, async () => {
  let settle: (() => void) | undefined;
  let handled = 0;
  const target: DispatchTarget = {
    open: () => undefined,
    message: () => {
      handled++;
      return new Promise<void>((resolve) => (settle = resolve));
    },
    close: () => undefined,
    handlerError: () => undefined,
  };
  const d = new Dispatcher(target, { maxSendBuffer: 1 << 20, maxQueuedMessages: 1_000, maxQueuedBytes: 1 << 24 }, { connectionError: () => undefined, connectionFinished: () => undefined });
  const conn = new Connection(link, d, { id: 'c1' });
  // Each message its own flat 10 KiB string, so one kept is 10 KiB kept.
  const message = (i: number) => Buffer.alloc(SIZE, 97 + (i % 26)).toString('latin1');
  conn.receive(message(0));
  conn.receive(message(1));
  gc!();
  const before = process.memoryUsage().heapUsed;
  for (let i = 2; i < MESSAGES; i++) {
    // One more behind the one waiting, then the one in flight settles: the queue holds one or two, never none.
    conn.receive(message(i));
    const done = settle!;
    settle = undefined;
    done();
    for (let turn = 0; turn < 10 && settle === undefined; turn++) await Promise.resolve();
    assert.ok(settle !== undefined, `message ${i}: the next handler started`);
    assert.ok(conn.queued >= 1, 'the queue is never empty');
  }
  gc!();
  const grown = process.memoryUsage().heapUsed - before;
  assert.ok(handled >= MESSAGES - 2, `handled ${handled}`);
  // Kept, the ~6,000 messages handled would be ~60 MiB (each 10 KiB, 1-byte chars); the queue itself holds two.
  assert.ok(grown < 16 * 1024 * 1024, `heap grew ${(grown / 1048576).toFixed(1)} MiB over ${MESSAGES} messages through a queue of one or two`);
});
