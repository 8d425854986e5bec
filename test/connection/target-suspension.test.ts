/**
 * issue 12: suspension held per runtime. A hold on some targets parks only their connections' events (in order) while
 * the other targets' connections keep being dispatched, and whenIdle(targets) waits for those targets' handlers only,
 * even while another target's handler never settles. The Dispatcher and Connections are the real ones; the links and
 * targets are small scripted stand-ins (the end-to-end path is test/runtime/worker-live-versions.test.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Connection } from '../../src/connection/connection.js';
import { type DispatchTarget, Dispatcher } from '../../src/connection/dispatcher.js';
import type { Link } from '../../src/connection/link.js';
import type { MessageData } from '../../src/plugin/contract.js';
import { fakeLink } from '../helpers/fake-link.js';

const link = (): Link => fakeLink();

/** A target that records what it handled; `hold(data)` makes that message's handler wait until released. */
class Target implements DispatchTarget {
  readonly handled: string[] = [];
  readonly #held = new Map<string, () => void>();
  #holding = new Set<string>();

  hold(data: string): void {
    this.#holding.add(data);
  }

  release(data: string): void {
    this.#held.get(data)?.();
  }

  open(): unknown {
    return undefined;
  }

  message(_conn: Connection, data: MessageData): unknown {
    const m = String(data);
    this.handled.push(m);
    if (!this.#holding.has(m)) return undefined;
    return new Promise<void>((resolve) => this.#held.set(m, resolve));
  }

  close(): unknown {
    return undefined;
  }

  handlerError(): void {}
}

function rig() {
  const a = new Target();
  const b = new Target();
  const d = new Dispatcher(a, { maxSendBuffer: 1 << 20, maxQueuedMessages: 100, maxQueuedBytes: 1 << 20 }, { connectionError: () => undefined, connectionFinished: () => undefined });
  const onA = new Connection(link(), d);
  d.target = b;
  const onB = new Connection(link(), d);
  d.target = a;
  assert.equal(onA.runtime, a);
  assert.equal(onB.runtime, b);
  return { a, b, d, onA, onB };
}

test('a hold on one target parks its connections in order; another target keeps dispatching; release resumes in arrival order', () => {
  const { a, b, d, onA, onB } = rig();
  const hold = d.suspend('fold', [a]);
  assert.equal(d.suspended, true);
  assert.equal(d.holds(a), true);
  assert.equal(d.holds(b), false);
  onA.receive('a1');
  onA.receive('a2');
  onB.receive('b1');
  onB.receive('b2');
  assert.deepEqual(a.handled, [], 'a is held');
  assert.deepEqual(b.handled, ['b1', 'b2'], 'b is not');
  assert.deepEqual(d.suspensions, ['fold']);
  hold.release();
  hold.release();
  assert.deepEqual(a.handled, ['a1', 'a2']);
  assert.equal(d.suspended, false);
});

test('a hold on every target and a hold on one: each release lifts its own only', () => {
  const { a, b, d, onA, onB } = rig();
  const all = d.suspend('swap');
  const one = d.suspend('fold', [a]);
  onA.receive('a1');
  onB.receive('b1');
  all.release();
  assert.deepEqual(b.handled, ['b1'], 'b resumes when the global hold goes');
  assert.deepEqual(a.handled, [], 'a still held by the fold');
  one.release();
  assert.deepEqual(a.handled, ['a1']);
});

test('whenIdle(targets) waits for those targets only, while another target has a handler that never settles', async () => {
  const { a, b, d, onA, onB } = rig();
  b.hold('stuck');
  onB.receive('stuck');
  a.hold('slow');
  onA.receive('slow');
  assert.equal(d.inflight, 2);
  const hold = d.suspend('fold', [a]);
  onA.receive('after');
  let idle: boolean | undefined;
  const waiting = d.whenIdle(10_000, [a]).then((v) => (idle = v));
  await new Promise((r) => setImmediate(r));
  assert.equal(idle, undefined, 'a handler of a still runs');
  a.release('slow');
  await waiting;
  assert.equal(idle, true);
  assert.equal(d.inflight, 1, "b's handler still runs: a global whenIdle would have waited for it");
  assert.deepEqual(a.handled, ['slow'], 'the message queued after the hold waits');
  hold.release();
  assert.deepEqual(a.handled, ['slow', 'after']);
  assert.equal(await d.whenIdle(20, [b]), false, 'a target whose handler never settles times out');
  b.release('stuck');
  assert.equal(await d.whenIdle(1_000, [a, b]), true);
});
