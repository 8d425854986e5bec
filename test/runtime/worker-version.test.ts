/**
 * The host half of a worker-mode version (src/runtime/worker-version.ts) against a scripted fake worker: the test
 * plays the thread on the other end of the private channel (spawn is a dep). The real threads are in
 * worker-isolation.test.ts; here, what needs exact control: one postMessage per turn, the reply validation, strikes
 * and the poison rule, hand-over order.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import type { MessagePort } from 'node:worker_threads';
import { Connection } from '../../src/connection/connection.js';
import { Dispatcher } from '../../src/connection/dispatcher.js';
import type { Link } from '../../src/connection/link.js';
import type { HotlineError } from '../../src/errors.js';
import type { RuntimeHooks } from '../../src/runtime/version-runtime.js';
import { AC_DONE, AC_SEND, EV_ATTACH, EV_MESSAGE, EVENT_STRIDE, SAB_RUNNING, type WorkerBoot } from '../../src/runtime/worker-protocol.js';
import { type SpawnWorker, WorkerVersion } from '../../src/runtime/worker-version.js';
import { quietLogger } from '../helpers/quiet-logger.js';
import { until } from '../helpers/until.js';
import { fakeLink } from '../helpers/fake-link.js';

interface FakeThread {
  /** What WorkerVersion listens to: emit 'exit' or 'error' to play a dying thread. */
  emitter: EventEmitter;
  port: MessagePort;
  sab: Int32Array;
  batches: unknown[][];
  terminated: boolean;
}

function fakeSpawn(threads: FakeThread[]): SpawnWorker {
  return ({ workerData }) => {
    const w = Object.assign(new EventEmitter(), {
      terminate: async () => {
        t.terminated = true;
        t.port.close();
        return 1;
      },
    });
    const boot: WorkerBoot = workerData.boot;
    const t: FakeThread = { emitter: w, port: workerData.port, sab: new Int32Array(boot.sab), batches: [], terminated: false };
    t.port.on('message', (m: unknown) => {
      if (Array.isArray(m)) t.batches.push(m);
    });
    threads.push(t);
    setImmediate(() => t.port.postMessage({ t: 'ready', name: 'fake', version: String(threads.length) }));
    return w;
  };
}

function link(sent: string[], closes: Array<[number, string]>): Link {
  return fakeLink({ send: (d) => void sent.push(String(d)), close: (code, reason) => void closes.push([code, reason]) });
}

/** The handler events of a batch: the connections made with `resume` are attached first (EV_ATTACH, no handler). */
function handlerEvents(batch: unknown[]): unknown[] {
  const out: unknown[] = [];
  for (let i = 0; i < batch.length; i += EVENT_STRIDE) if (batch[i] !== EV_ATTACH) out.push(...batch.slice(i, i + EVENT_STRIDE));
  return out;
}

async function setup() {
  const threads: FakeThread[] = [];
  const failures: HotlineError[] = [];
  const errors: string[] = [];
  const hooks: RuntimeHooks = { onHandlerError: (_v, err) => void errors.push(err.code), onFailure: (_v, err) => void failures.push(err) };
  const d = new Dispatcher({ open: () => undefined, message: () => undefined, close: () => undefined, handlerError: () => undefined }, { maxSendBuffer: 1 << 20, maxQueuedMessages: 100, maxQueuedBytes: 1 << 20 }, { connectionError: () => undefined, connectionFinished: () => undefined });
  const options = { hangTimeout: 60_000, loadTimeout: 5_000, resourceLimits: { maxOldGenerationSizeMb: 64 }, log: quietLogger, spawn: fakeSpawn(threads) };
  const load = () => WorkerVersion.load(threads.length + 1, { code: '', map: '{}', inputs: [], hash: 'h', entry: '/x/plugin.ts' }, d, hooks, options);
  const v = await load();
  d.target = v;
  v.serving();
  return { threads, failures, errors, d, v, load };
}

test('events of one turn leave in one postMessage; the actions of a batch are applied in order, then each handler is done', async () => {
  const s = await setup();
  const sent: string[][] = [[], [], []];
  const conns = sent.map((out, i) => new Connection(link(out, []), s.d, { id: `c${i}`, resume: { state: undefined } }));
  for (const c of conns) c.receive('hi');
  await until(() => s.threads[0]!.batches.length > 0, 'a batch');
  // The checkpoint call is an object message; the three events are one array.
  assert.equal(s.threads[0]!.batches.length, 1);
  const all = s.threads[0]!.batches[0]!;
  // Each connection made with `resume` (a restored session) is mirrored first, with its state, before its events.
  assert.deepEqual([0, 1, 2].map((i) => [all[i * EVENT_STRIDE], all[i * EVENT_STRIDE + 2]]), [[EV_ATTACH, 'c0'], [EV_ATTACH, 'c1'], [EV_ATTACH, 'c2']]);
  const batch = handlerEvents(all);
  assert.equal(batch.length, 3 * EVENT_STRIDE);
  assert.deepEqual([batch[0], batch[2], batch[3]], [EV_MESSAGE, 'c0', 'hi']);
  const seqs = [0, 1, 2].map((i) => batch[i * EVENT_STRIDE + 1] as number);
  s.threads[0]!.port.postMessage([AC_SEND, 'c1', 'one', AC_DONE, seqs[1], undefined, AC_SEND, 'c1', 'late']);
  await until(() => sent[1]!.length === 2, 'the replies');
  assert.deepEqual(sent[1], ['one', 'late'], 'in the order the worker sent them');
  assert.equal(s.v.pendingCount, 2, 'c1 done; c0 and c2 still in flight');
  assert.equal(s.d.inflight, 2);
  s.v.retire();
});

test('a malformed message from the worker fails the version with HOTLINE_E_WORKER_PROTOCOL and terminates it', async () => {
  const s = await setup();
  s.threads[0]!.port.postMessage([42, 'x', 'y']);
  await until(() => s.failures.length === 1, 'the failure');
  assert.equal(s.failures[0]!.code, 'HOTLINE_E_WORKER_PROTOCOL');
  assert.equal(s.threads[0]!.terminated, true);
  s.v.retire();
});

test('strikes: the event running at two failures is dropped with HOTLINE_E_POISON_MESSAGE (its connection closed with 1011); the others are handed over in order, without strikes', async () => {
  const s = await setup();
  const closes: Array<[number, string]> = [];
  const poison = new Connection(link([], closes), s.d, { id: 'p', resume: { state: undefined } });
  const other = new Connection(link([], []), s.d, { id: 'o', resume: { state: undefined } });
  poison.receive('bad');
  other.receive('fine');
  await until(() => s.threads[0]!.batches.length === 1, 'the batch');
  let batch = handlerEvents(s.threads[0]!.batches[0]!);
  // The thread dies in the handler of `bad`: its seq is in the RUNNING word.
  Atomics.store(s.threads[0]!.sab, SAB_RUNNING, batch[1] as number);
  const fail1 = s.failures.length;
  const v1 = s.v;
  const next = await s.load();
  s.threads[0]!.emitter.emit('exit', 3);
  await until(() => s.failures.length === fail1 + 1, 'v1 failed');
  s.d.target = next;
  next.serving();
  v1.handOver(next);
  v1.retire();
  await until(() => s.threads[1]!.batches.length === 1, 'the replay');
  batch = s.threads[1]!.batches[0]!;
  assert.deepEqual([batch[2], batch[3], batch[EVENT_STRIDE + 2], batch[EVENT_STRIDE + 3]], ['p', 'bad', 'o', 'fine'], 'replayed in the order they were posted');
  // Second failure with `bad` running again.
  Atomics.store(s.threads[1]!.sab, SAB_RUNNING, batch[1] as number);
  const third = await s.load();
  s.threads[1]!.emitter.emit('exit', 3);
  await until(() => s.failures.length === fail1 + 2, 'v2 failed');
  s.d.target = third;
  third.serving();
  next.handOver(third);
  next.retire();
  await until(() => s.threads[2]!.batches.length === 1, 'the second replay');
  batch = s.threads[2]!.batches[0]!;
  assert.equal(batch.length, EVENT_STRIDE, 'only the innocent event is replayed');
  assert.equal(batch[2], 'o');
  assert.deepEqual(closes, [[1011, 'HOTLINE_E_POISON_MESSAGE']]);
  assert.ok(s.errors.includes('HOTLINE_E_POISON_MESSAGE'), 'counted against the version');
  third.retire();
});


test('adopt: a malformed answer from the worker rejects with HOTLINE_E_WORKER_PROTOCOL and the mirrors it may have made are forgotten', async () => {
  const s = await setup();
  const conn = new Connection(link([], []), s.d, { id: 'm', resume: { state: { seen: 1 } } });
  const calls: Array<{ op: string; arg: unknown }> = [];
  s.threads[0]!.port.on('message', (m: { t?: string; id?: number; op?: string; arg?: unknown }) => {
    if (m.t !== 'call') return;
    calls.push({ op: m.op!, arg: m.arg });
    if (m.op === 'adopt') s.threads[0]!.port.postMessage({ t: 'result', id: m.id, ok: true, value: 'not a list' });
    else if (m.op === 'export') s.threads[0]!.port.postMessage({ t: 'result', id: m.id, ok: true, value: { version: '1', state: {}, connStates: [] } });
    else s.threads[0]!.port.postMessage({ t: 'result', id: m.id, ok: true });
  });
  await assert.rejects(s.v.adoptConnections({ version: 'x', state: {} }, [conn], 5_000), (err: { code?: string }) => err.code === 'HOTLINE_E_WORKER_PROTOCOL');
  await until(() => calls.some((c) => c.op === 'forget'), 'the forget call');
  const adopt = calls.find((c) => c.op === 'adopt')!.arg as { from: unknown; conns: unknown[] };
  assert.deepEqual(adopt.conns, [['m', 'ws', '127.0.0.1', { seen: 1 }]], 'the connection with the state the host holds');
  assert.deepEqual(calls.find((c) => c.op === 'forget')!.arg, ['m']);
  s.v.retire();
});

test('a malformed checkpoint export from the worker fails the version with HOTLINE_E_WORKER_PROTOCOL (nothing of it is taken)', async () => {
  const s = await setup();
  const conn = new Connection(link([], []), s.d, { id: 'k', resume: { state: { seen: 1 } } });
  s.threads[0]!.port.on('message', (m: { t?: string; id?: number; op?: string }) => {
    if (m.t === 'call' && m.op === 'export') s.threads[0]!.port.postMessage({ t: 'result', id: m.id, ok: true, value: { version: '1', state: {}, connStates: [['k', { seen: 99 }], 42] } });
  });
  // serving() in setup() asked for the first checkpoint before this listener: ask for the next one.
  await s.v.exportState().catch(() => undefined);
  await until(() => s.failures.length === 1, 'the failure');
  assert.equal(s.failures[0]!.code, 'HOTLINE_E_WORKER_PROTOCOL');
  assert.deepEqual(conn.state, { seen: 1 }, 'the host copy is untouched');
  s.v.retire();
});
