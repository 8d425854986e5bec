/**
 * The host's operation lock (src/lock/operation-lock.ts) and the counted dispatch suspension (dispatcher.ts): who
 * waits, who is refused by name, that waits are bounded, and that one holder's release never lifts another's.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Dispatcher } from '../../src/connection/dispatcher.js';
import { isHotlineError } from '../../src/errors.js';
import { type OperationName, OperationLock } from '../../src/lock/operation-lock.js';

function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  return assert.rejects(p, (err: unknown) => isHotlineError(err) && err.code === code);
}

test('a free lock is granted at once, and its state names the holder', async () => {
  let now = 1000;
  const lock = new OperationLock({ now: () => now });
  assert.deepEqual(lock.state, { phase: 'free', refused: 0 });
  const hold = await lock.acquire('export', 100);
  now += 25;
  assert.deepEqual(lock.state, { phase: 'held', holder: 'export', sinceMs: 25, waiting: 0, refused: 0 });
  hold.release();
  hold.release();
  assert.equal(lock.holder, undefined);
});

test('a swap during an upgrade is refused by name, at once: HOTLINE_E_UPGRADE_IN_PROGRESS', async () => {
  const lock = new OperationLock();
  for (const upgrade of ['export', 'adopt'] as const) {
    const hold = lock.tryAcquire(upgrade);
    assert.throws(() => lock.check('swap'), (err: unknown) => isHotlineError(err, 'HOTLINE_E_UPGRADE_IN_PROGRESS'));
    await rejectsWith(lock.acquire('swap', 10_000), 'HOTLINE_E_UPGRADE_IN_PROGRESS');
    hold.release();
  }
  assert.equal(lock.state.refused, 4);
  lock.check('swap');
});

test('the rule table: refusals by name for every pair that must not wait', async () => {
  const cases: Array<[requested: OperationName, held: OperationName, code: string]> = [
    ['swap', 'shutdown', 'HOTLINE_E_SWAP_CLOSED'],
    ['export', 'export', 'HOTLINE_E_UPGRADE_IN_PROGRESS'],
    ['export', 'adopt', 'HOTLINE_E_UPGRADE_IN_PROGRESS'],
    ['export', 'shutdown', 'HOTLINE_E_SWAP_CLOSED'],
    ['adopt', 'swap', 'HOTLINE_E_UPGRADE_REFUSED'],
    ['adopt', 'export', 'HOTLINE_E_UPGRADE_IN_PROGRESS'],
    ['adopt', 'shutdown', 'HOTLINE_E_SWAP_CLOSED'],
  ];
  for (const [requested, held, code] of cases) {
    const lock = new OperationLock();
    const hold = lock.tryAcquire(held);
    await rejectsWith(lock.acquire(requested, 10_000), code);
    assert.equal(lock.holder, held, `${requested} during ${held} leaves ${held} holding`);
    hold.release();
  }
});

test('an export waits for a running swap and gets the lock when it ends', async () => {
  const lock = new OperationLock();
  const swap = lock.tryAcquire('swap');
  let got = false;
  const pending = lock.acquire('export', 10_000).then((h) => ((got = true), h));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(got, false, 'still waiting while the swap holds');
  assert.equal(lock.state.phase === 'held' && lock.state.waiting, 1);
  swap.release();
  const hold = await pending;
  assert.equal(lock.holder, 'export');
  // The swap's release is spent: a second call must not free the export's lock.
  swap.release();
  assert.equal(lock.holder, 'export');
  hold.release();
});

test('a wait is bounded: HOTLINE_E_OPERATION_TIMEOUT names the holder, and the holder keeps the lock', async () => {
  const lock = new OperationLock();
  const swap = lock.tryAcquire('swap');
  await assert.rejects(lock.acquire('export', 20), (err: unknown) => isHotlineError(err, 'HOTLINE_E_OPERATION_TIMEOUT') && /swap/.test(err.message));
  assert.equal(lock.holder, 'swap');
  assert.throws(() => lock.tryAcquire('export'), (err: unknown) => isHotlineError(err, 'HOTLINE_E_OPERATION_TIMEOUT'));
  swap.release();
  assert.equal(lock.holder, undefined, 'the timed-out waiter was removed, so nobody got the lock');
});

test('a shutdown waits for the holder, then takes the lock at its bound; the old holder release is a no-op', async () => {
  const lock = new OperationLock();
  const exp = lock.tryAcquire('export');
  const shutdown = await lock.acquire('shutdown', 20);
  assert.equal(lock.holder, 'shutdown');
  exp.release();
  assert.equal(lock.holder, 'shutdown');
  shutdown.release();
  assert.equal(lock.holder, undefined);
});

test('waiters behind a holder are served in order, and a waiter the next holder refuses is refused', async () => {
  const lock = new OperationLock();
  const first = lock.tryAcquire('swap');
  const order: string[] = [];
  const shutdown = lock.acquire('shutdown', 10_000).then((h) => (order.push('shutdown'), h));
  const swap = lock.acquire('swap', 10_000).then(
    () => order.push('swap'),
    (err: unknown) => order.push(isHotlineError(err) ? err.code : 'other'),
  );
  first.release();
  (await shutdown).release();
  await swap;
  assert.deepEqual(order, ['shutdown', 'HOTLINE_E_SWAP_CLOSED']);
});

test('dispatch suspension is counted: one holder resuming never lifts another holder', () => {
  const d = new Dispatcher(
    { open: () => undefined, message: () => undefined, close: () => undefined, handlerError: () => undefined },
    { maxSendBuffer: 1 << 20, maxQueuedMessages: 1_000, maxQueuedBytes: 1 << 24 },
    { connectionError: () => undefined, connectionFinished: () => undefined },
  );
  const upgrade = d.suspend('export');
  const swap = d.suspend('swap');
  assert.deepEqual(d.suspensions, ['export', 'swap']);
  swap.release();
  assert.equal(d.suspended, true, 'the swap resumed its own hold only');
  swap.release();
  assert.equal(d.suspended, true, 'a second release is a no-op');
  upgrade.release();
  assert.equal(d.suspended, false);
});
