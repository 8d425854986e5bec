/**
 * The refusal hold (src/transport/refusal-hold.ts) with a fake clock and timer: a refusal is answered after the
 * delay, in arrival order, never twice; a socket that closed meanwhile gets no answer; the hold is bounded; close()
 * answers everything at once. And createAdmit's use of it: held sockets count against their address.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { RefusalHold, type RefusalHoldDeps } from '../../src/transport/refusal-hold.js';
import { createAdmit } from '../../src/transport/admission.js';

class FakeSocket extends EventEmitter {
  destroyed = false;
  paused = false;
  pause(): this {
    this.paused = true;
    return this;
  }
  close(): void {
    this.destroyed = true;
    this.emit('close');
  }
}

/** A clock and one-shot timers that fire only when the test advances the clock. */
function fakeTime() {
  let t = 0;
  const timers = new Set<{ at: number; fn: () => void }>();
  const deps: RefusalHoldDeps = {
    now: () => t,
    setTimer(fn, ms) {
      const timer = { at: t + ms, fn, unref: () => timer };
      timers.add(timer);
      return timer;
    },
    clearTimer: (timer) => void timers.delete(timer as { at: number; fn: () => void }),
  };
  const advance = (ms: number): void => {
    const until = t + ms;
    for (;;) {
      const next = [...timers].filter((x) => x.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      timers.delete(next);
      t = next.at;
      next.fn();
    }
    t = until;
  };
  return { deps, advance, pending: () => timers.size };
}

test('a held refusal is answered after the delay, in arrival order, once; the socket is paused meanwhile', () => {
  const time = fakeTime();
  const hold = new RefusalHold(1000, 10, time.deps);
  const answered: number[] = [];
  const sockets = [0, 1, 2].map(() => new FakeSocket());
  assert.equal(hold.hold(sockets[0]!, () => answered.push(0)), true);
  time.advance(400);
  assert.equal(hold.hold(sockets[1]!, () => answered.push(1)), true);
  assert.equal(hold.hold(sockets[2]!, () => answered.push(2)), true);
  assert.ok(sockets.every((s) => s.paused));
  time.advance(599);
  assert.deepEqual(answered, [], 'nothing before its delay');
  time.advance(1);
  assert.deepEqual(answered, [0]);
  time.advance(400);
  assert.deepEqual(answered, [0, 1, 2]);
  time.advance(5000);
  assert.deepEqual(answered, [0, 1, 2], 'never twice');
  assert.equal(hold.size, 0);
  assert.equal(time.pending(), 0, 'no timer left when nothing is held');
});

test('a socket that closes while held gets no answer; the hold is bounded; close() answers the rest at once', () => {
  const time = fakeTime();
  const hold = new RefusalHold(1000, 3, time.deps);
  const answered: number[] = [];
  const sockets = [0, 1, 2, 3].map(() => new FakeSocket());
  for (let i = 0; i < 3; i++) assert.equal(hold.hold(sockets[i]!, () => answered.push(i)), true);
  assert.equal(hold.hold(sockets[3]!, () => answered.push(3)), false, 'over maxHeld: the caller answers at once');
  sockets[1]!.close();
  hold.close();
  assert.deepEqual(answered, [0, 2]);
  assert.equal(hold.hold(new FakeSocket(), () => answered.push(9)), false, 'a closed hold holds nothing');
  assert.equal(time.pending(), 0);
});

test('many refusals: the queue is compacted and every live one answered', () => {
  const time = fakeTime();
  const hold = new RefusalHold(100, 5000, time.deps);
  let answered = 0;
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 500; i++) hold.hold(new FakeSocket(), () => answered++);
    time.advance(50);
  }
  time.advance(100);
  assert.equal(answered, 10_000);
  assert.equal(hold.size, 0);
});

test('createAdmit: a rate refusal is held and counts against its address until it closes; a connections refusal is answered at once', () => {
  const time = fakeTime();
  const admit = createAdmit({ maxConnectionsPerIp: 3, handshakeRatePerIp: 1 }, () => undefined, time.deps, new RefusalHold(1000, 10, time.deps))!;
  const ok = new FakeSocket();
  assert.equal(admit.check('10.0.0.1', ok), undefined);
  const answered: string[] = [];
  const heldSockets = [new FakeSocket(), new FakeSocket()];
  for (const s of heldSockets) {
    const why = admit.check('10.0.0.1', s);
    assert.equal(why, 'rate');
    admit.refuse(why!, '10.0.0.1', s, () => answered.push('429'));
  }
  assert.deepEqual([...answered], [], 'rate refusals are held');
  // 1 admitted + 2 held = 3 open: the address is at maxConnectionsPerIp, even with a token back.
  time.advance(1000);
  assert.deepEqual([...answered], ['429', '429']);
  const s4 = new FakeSocket();
  assert.equal(admit.check('10.0.0.1', s4), 'connections');
  admit.refuse('connections', '10.0.0.1', s4, () => answered.push('503'));
  assert.deepEqual(answered, ['429', '429', '503'], 'a connections refusal is not held');
  for (const s of heldSockets) s.close();
  assert.equal(admit.check('10.0.0.1', new FakeSocket()), undefined, 'closed held sockets free their slots');
});
