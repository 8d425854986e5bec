/**
 * The supervisor's logic with a scripted env (src/handoff/supervisor-env.ts): fake worker processes that answer the
 * IPC protocol as each test scripts them, a bind that can fail, a clock advanced by hand, signals delivered by the
 * test. So every abort path of an upgrade, the start failures, the stop signals and the restart backoff are checked
 * step by step, with no process, socket or timer. The real-process tests (upgrade.test.ts, crash-restart.test.ts,
 * stop-signals.test.ts) check the same paths end to end.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import path from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import type { Bundle } from '../../src/build/bundler.js';
import { HotlineError } from '../../src/errors.js';
import { hashOf } from '../../src/handoff/build-report.js';
import type { Clock } from '../../src/handoff/clock.js';
import type { FromWorker, ToWorker } from '../../src/handoff/protocol.js';
import { BACKOFF_MAX_MS, Supervisor } from '../../src/handoff/supervisor.js';
import type { SupervisorEnv } from '../../src/handoff/supervisor-env.js';
import type { AdminHandler } from '../../src/admin/admin-server.js';

/** A clock whose timers fire only when the test advances it. */
class FakeClock implements Clock {
  #t = 0;
  #id = 0;
  #timers = new Map<number, { at: number; ms: number; fn: () => void }>();

  now(): number {
    return this.#t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    this.#timers.set(++this.#id, { at: this.#t + ms, ms, fn });
    return this.#id;
  }
  clearTimeout(timer: unknown): void {
    this.#timers.delete(timer as number);
  }
  /** The delays of the timers pending now. */
  get pending(): number[] {
    return [...this.#timers.values()].map((t) => t.ms);
  }
  /** Move time on by `ms`, firing each timer due on the way, in order. */
  async advance(ms: number): Promise<void> {
    const end = this.#t + ms;
    for (;;) {
      const due = [...this.#timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.#timers.delete(due[0]);
      this.#t = due[1].at;
      due[1].fn();
      await settle();
    }
    this.#t = end;
  }
}

/** Let promise callbacks and the fake channel's callbacks run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** A worker process as the supervisor sees one: what it was sent, and a script for what it says. */
class FakeWorker extends EventEmitter {
  static #nextPid = 1000;
  readonly pid = FakeWorker.#nextPid++;
  readonly stdio: unknown[] = [];
  readonly received: ToWorker[] = [];
  readonly signals: string[] = [];
  connected = true;

  constructor(readonly lane: boolean) {
    super();
  }

  send(msg: ToWorker, _handle: unknown, _options: unknown, written?: (err: Error | null) => void): boolean {
    this.received.push(msg);
    queueMicrotask(() => {
      written?.(null);
      this.emit('sent', msg);
    });
    return true;
  }
  kill(signal: string): boolean {
    this.signals.push(signal);
    this.exit(null, signal);
    return true;
  }
  exit(code: number | null, signal: string | null = null): void {
    if (!this.connected) return;
    this.connected = false;
    this.emit('exit', code, signal);
  }
  say(msg: FromWorker, handle?: unknown): void {
    this.emit('message', msg, handle);
  }
  /** The kinds of message received, in order. */
  get kinds(): string[] {
    return this.received.map((m) => m.t);
  }
}

/** A worker that does what a healthy one does: ready at start, exported/committed, exits at shutdown or release. */
function healthy(w: FakeWorker): void {
  w.on('sent', (m: ToWorker) => {
    if (m.t === 'start') w.say({ t: 'ready', plugin: { name: 'p', version: w.lane ? '2' : '1' } });
    else if (m.t === 'export') w.say({ t: 'exported', moved: 0, sentAway: 0, stateBytes: 0 });
    else if (m.t === 'commit') w.say({ t: 'committed' });
    else if (m.t === 'shutdown' || m.t === 'release') w.exit(0);
    else if (m.t === 'req') w.say({ t: 'res', id: m.id, ok: true, result: {} });
  });
}

interface Rig {
  sup: Supervisor;
  clock: FakeClock;
  forks: FakeWorker[];
  signals: Map<string, (s: NodeJS.Signals) => void>;
  exits: number[];
  closedHandles: number;
  admin: { started: number; closed: number; handler?: AdminHandler };
}

function rig(o: { script?: (w: FakeWorker, n: number) => void; bindFailsAt?: number; listeners?: number; watchdogTimeout?: number } = {}): Rig {
  const clock = new FakeClock();
  const forks: FakeWorker[] = [];
  const signals = new Map<string, (s: NodeJS.Signals) => void>();
  const exits: number[] = [];
  const r: Pick<Rig, 'closedHandles' | 'admin'> = { closedHandles: 0, admin: { started: 0, closed: 0 } };
  let binds = 0;
  const env: SupervisorEnv = {
    fork: ({ lane }) => {
      const w = new FakeWorker(lane);
      forks.push(w);
      (o.script ?? healthy)(w, forks.length);
      return w as unknown as ChildProcess;
    },
    bind: async (host, port) => {
      if (++binds === o.bindFailsAt) throw new HotlineError('HOTLINE_E_LISTEN', `cannot listen on ${host}:${port}: EADDRINUSE`);
      return { handle: { close: () => void r.closedHandles++ }, host, port: port || 40_000 + binds };
    },
    admin: (_path, handler) => {
      r.admin.handler = handler;
      return {
        start: async () => void r.admin.started++,
        close: async () => void r.admin.closed++,
      };
    },
    clock,
    onSignal: (s, fn) => signals.set(s, fn),
    exit: (code) => void exits.push(code),
  };
  const listen = Array.from({ length: o.listeners ?? 1 }, () => ({ transport: 'ws' as const, host: '127.0.0.1', port: 0 }));
  const sup = new Supervisor(
    { config: { entry: 'plugin.ts', listen, watch: false, dev: false }, admin: 'admin.sock', readyTimeout: 1_000, ackTimeout: 500, settleTimeout: 100, watchdogTimeout: o.watchdogTimeout, log: pino({ level: 'silent' }) },
    env,
  );
  return Object.assign(r, { sup, clock, forks, signals, exits }) as Rig;
}

test('start: a busy port fails with HOTLINE_E_LISTEN before any worker is forked or the admin socket opened', async () => {
  const r = rig({ bindFailsAt: 2, listeners: 2 });
  await assert.rejects(r.sup.start(), { code: 'HOTLINE_E_LISTEN' });
  assert.equal(r.forks.length, 0);
  assert.equal(r.admin.started, 0);
  assert.equal(r.closedHandles, 1, 'the listener bound before the failure is closed');
  assert.equal(r.sup.state, 'stopped');
});

test('start: a worker that reports fatal fails the start with its code; admin socket and listeners closed', async () => {
  const r = rig({ script: (w) => w.on('sent', (m: ToWorker) => m.t === 'start' && w.say({ t: 'fatal', error: { code: 'HOTLINE_E_BUILD', message: 'x' } })) });
  await assert.rejects(r.sup.start(), { code: 'HOTLINE_E_BUILD' });
  assert.deepEqual(r.forks[0]!.kinds, ['listener', 'start']);
  assert.deepEqual(r.forks[0]!.received[0], { t: 'listener', index: 0, bound: { host: '127.0.0.1', port: 40_001 } });
  assert.equal(r.admin.closed, 1);
  assert.equal(r.closedHandles, 1);
});

test('start: a worker never ready is killed at the ready timeout', async () => {
  const r = rig({ script: () => undefined });
  const started = assert.rejects(r.sup.start(), { code: 'HOTLINE_E_UPGRADE_READY_TIMEOUT' });
  await settle();
  assert.deepEqual(r.clock.pending, [1_000]);
  await r.clock.advance(1_000);
  await started;
  assert.deepEqual(r.forks[0]!.signals, ['SIGKILL']);
});

test('restart backoff: 100 ms doubling to the cap for workers that crash at once; back to 100 after one lived 10 s', async () => {
  const r = rig();
  await r.sup.start();
  const delays: number[] = [];
  for (let crash = 0; crash < 8; crash++) {
    r.forks.at(-1)!.exit(1);
    await settle();
    assert.equal(r.clock.pending.length, 1, 'one restart timer');
    const delay = r.clock.pending[0]!;
    delays.push(delay);
    await r.clock.advance(delay);
    assert.equal(r.forks.length, crash + 2, 'a new worker after the wait, not before');
  }
  assert.deepEqual(delays, [100, 200, 400, 800, 1_600, 3_200, BACKOFF_MAX_MS, BACKOFF_MAX_MS]);
  await r.clock.advance(10_001);
  r.forks.at(-1)!.exit(1);
  await settle();
  assert.deepEqual(r.clock.pending, [100]);
  // A stop while a restart waits: no worker is started any more.
  assert.equal(await r.sup.stop(), 0);
  await r.clock.advance(1_000);
  assert.equal(r.forks.length, 9);
});

/** Start a supervisor whose later workers (the upgrade's new one) follow `next`; the first is healthy. */
async function upgrading(next: (w: FakeWorker) => void): Promise<Rig & { old: FakeWorker }> {
  const r = rig({ script: (w, n) => (n === 1 ? healthy(w) : next(w)) });
  await r.sup.start();
  return Object.assign(r, { old: r.forks[0]! });
}

test('upgrade abort: the new worker is never ready: killed, HOTLINE_E_UPGRADE_READY_TIMEOUT, the old one never asked to export', async () => {
  const r = await upgrading(() => undefined);
  const up = r.sup.upgrade();
  await settle();
  await assert.rejects(r.sup.upgrade(), { code: 'HOTLINE_E_UPGRADE_IN_PROGRESS' });
  await r.clock.advance(1_000);
  const s = await up;
  assert.equal(s.outcome, 'aborted');
  assert.equal(s.error?.code, 'HOTLINE_E_UPGRADE_READY_TIMEOUT');
  assert.deepEqual(r.forks[1]!.signals, ['SIGKILL']);
  assert.deepEqual(r.old.kinds, ['listener', 'start'], 'nothing to resume: the old worker never stopped');
  assert.equal(r.sup.workerPid, r.old.pid);
  assert.equal(r.sup.state, 'running');
});

/** A new worker that gets ready, then does what `then` scripts. */
const readyThen = (then: (w: FakeWorker) => void) => (w: FakeWorker) => {
  w.on('sent', (m: ToWorker) => m.t === 'start' && w.say({ t: 'ready', plugin: { name: 'p', version: '2' } }));
  then(w);
};

for (const c of [
  { name: 'the new worker exits while connections move', code: 'HOTLINE_E_UPGRADE_WORKER_EXIT', act: (r: Rig) => r.forks[1]!.exit(1) },
  { name: 'the new worker refuses an item', code: 'HOTLINE_E_UPGRADE_REFUSED', act: (r: Rig) => r.forks[1]!.say({ t: 'nack', error: { code: 'HOTLINE_E_MIGRATE', message: 'x' } }) },
  { name: 'the old worker cannot export', code: 'HOTLINE_E_SWAP_TIMEOUT', act: (r: Rig) => r.forks[0]!.say({ t: 'nack', error: { code: 'HOTLINE_E_SWAP_TIMEOUT', message: 'x' } }) },
]) {
  test(`upgrade abort: ${c.name}: ${c.code}; the old worker gets its listeners back and resumes`, async () => {
    // The old worker is asked to export but has not finished when the failure comes.
    const r = await upgrading(readyThen(() => undefined));
    r.old.removeAllListeners('sent');
    const up = r.sup.upgrade();
    await settle();
    assert.equal(r.old.kinds.at(-1), 'export');
    c.act(r);
    const s = await up;
    assert.equal(s.outcome, 'aborted');
    assert.equal(s.error?.code, c.code);
    await settle();
    assert.deepEqual(r.old.kinds.slice(-2), ['listener', 'abort']);
    assert.ok(!r.forks[1]!.connected, 'the new worker is gone');
    assert.equal(r.sup.workerPid, r.old.pid);
  });
}

test('upgrade abort: the new worker stops acknowledging: HOTLINE_E_UPGRADE_TIMEOUT at the ack timeout; the handle in flight is closed', async () => {
  const r = await upgrading(readyThen(() => undefined));
  r.old.removeAllListeners('sent');
  const up = r.sup.upgrade();
  await settle();
  let closed = 0;
  r.old.say({ t: 'conn', kind: 'tcp', remoteAddress: '', protocol: '', head: new Uint8Array(), opened: true, state: undefined, messages: [] }, { close: () => closed++ });
  await settle();
  assert.equal(r.forks[1]!.kinds.at(-1), 'conn', 'forwarded to the new worker');
  assert.equal(closed, 1, "the supervisor's copy is closed once handed on");
  await r.clock.advance(499);
  assert.equal(r.sup.state, 'upgrading');
  await r.clock.advance(1);
  const s = await up;
  assert.equal(s.error?.code, 'HOTLINE_E_UPGRADE_TIMEOUT');
  assert.match(s.error!.message, /0\/1 connections/);
});

test('upgrade abort: the old worker dies meanwhile: HOTLINE_E_WORKER_EXIT, the new one killed, a restart scheduled', async () => {
  const r = await upgrading(() => undefined);
  const up = r.sup.upgrade();
  await settle();
  r.old.exit(null, 'SIGKILL');
  const s = await up;
  assert.equal(s.error?.code, 'HOTLINE_E_WORKER_EXIT');
  assert.deepEqual(r.forks[1]!.signals, ['SIGKILL']);
  await settle();
  assert.deepEqual(r.clock.pending, [100]);
  await r.clock.advance(100);
  assert.equal(r.forks.length, 3, 'a fresh worker replaces the dead one');
});

test('upgrade commit: every item acknowledged, then commit to the new worker and release to the old; the new one serves', async () => {
  const r = await upgrading((w) => {
    healthy(w);
    w.on('sent', (m: ToWorker) => m.t === 'conn' && w.say({ t: 'ack', n: 1, items: 1 }));
  });
  r.old.removeAllListeners('sent');
  r.old.on('sent', (m: ToWorker) => {
    if (m.t !== 'export') return;
    r.old.say({ t: 'conn', kind: 'tcp', remoteAddress: '', protocol: '', head: new Uint8Array(), opened: true, state: undefined, messages: [] }, { close: () => undefined });
    r.old.say({ t: 'exported', moved: 1, sentAway: 0, stateBytes: 0 });
  });
  const s = await r.sup.upgrade();
  assert.equal(s.outcome, 'committed', JSON.stringify(s));
  assert.equal(s.moved, 1);
  assert.deepEqual(r.forks[1]!.kinds, ['listener', 'start', 'conn', 'commit']);
  assert.equal(r.old.kinds.at(-1), 'release');
  assert.equal(r.sup.workerPid, r.forks[1]!.pid);
  assert.deepEqual(r.sup.plugin, { name: 'p', version: '1' }, 'not changed by an upgrade: status asks the worker');
});

test('signals: SIGHUP reloads, SIGUSR2 upgrades, SIGTERM stops gracefully (exit code of the worker); a second SIGTERM kills and exits 1', async () => {
  const r = rig();
  await r.sup.start();
  r.sup.handleSignals();
  r.signals.get('SIGHUP')!('SIGHUP');
  await settle();
  assert.deepEqual(r.forks[0]!.received.at(-1), { t: 'req', id: 1, cmd: 'reload', trigger: 'signal' });
  r.signals.get('SIGUSR2')!('SIGUSR2');
  await settle();
  assert.equal(r.forks.length, 2);
  assert.equal(r.forks[1]!.lane, true, 'an upgrade worker, with a handle lane');
  assert.equal(r.sup.workerPid, r.forks[1]!.pid);

  // A worker slow to stop: the first SIGTERM asks it, the second kills it.
  const slow = r.forks[1]!;
  slow.removeAllListeners('sent');
  r.signals.get('SIGTERM')!('SIGTERM');
  await settle();
  assert.equal(slow.kinds.at(-1), 'shutdown');
  assert.deepEqual(r.exits, []);
  r.signals.get('SIGINT')!('SIGINT');
  assert.deepEqual(slow.signals, ['SIGKILL']);
  assert.deepEqual(r.exits, [1]);
});

test('stop: the worker is told to shut down, the supervisor ends with its exit code; stop() is idempotent', async () => {
  const r = rig();
  await r.sup.start();
  const a = r.sup.stop();
  const b = r.sup.stop();
  assert.equal(await a, 0);
  assert.equal(await b, 0);
  assert.equal(await r.sup.whenStopped(), 0);
  assert.deepEqual(r.forks[0]!.kinds, ['listener', 'start', 'shutdown']);
  assert.equal(r.admin.closed, 1);
  assert.equal(r.closedHandles, 1);
  assert.equal(r.sup.state, 'stopped');
});

test('a stop during an upgrade: the old worker shuts down, the new one is killed, no restart follows', async () => {
  const r = await upgrading(() => undefined);
  const up = r.sup.upgrade();
  await settle();
  const code = await r.sup.stop();
  assert.equal(code, 0);
  assert.equal(r.old.kinds.at(-1), 'shutdown');
  const s = await up;
  assert.equal(s.outcome, 'aborted');
  assert.equal(s.error?.code, 'HOTLINE_E_SWAP_CLOSED');
  assert.deepEqual(r.forks[1]!.signals, ['SIGKILL']);
  await settle();
  assert.deepEqual(r.clock.pending, [], 'no restart timer');
  assert.equal(r.forks.length, 2);
});

test('a stop past the commit point: the upgrade finishes, and the new worker is the one shut down (none outlives the stop)', async () => {
  // The new worker never confirms the commit; the old one exits at release, as a real one does.
  const r = await upgrading(readyThen((w) => w.on('sent', (m: ToWorker) => m.t === 'shutdown' && w.exit(0))));
  const up = r.sup.upgrade();
  await settle();
  assert.equal(r.forks[1]!.kinds.at(-1), 'commit');
  assert.equal(await r.sup.stop(), 0);
  assert.equal((await up).outcome, 'committed');
  assert.equal(r.forks[1]!.kinds.at(-1), 'shutdown');
  assert.ok(!r.forks[1]!.connected && !r.old.connected, 'both workers are gone');
});

// ── the watchdog (issue 11, inline mode): a worker whose heartbeat stops is killed and restarted ───────────────

interface WatchdogView {
  supervisor: { restarts: number; workerPid: number; watchdog: { timeoutMs: number; hangs: number; last?: { code: string; pid: number; silentMs: number } } };
}

/** The supervisor's status through its admin handler, as `hotline status` gets it. */
async function status(r: Rig): Promise<WatchdogView> {
  return (await r.admin.handler!('status', { force: false })) as WatchdogView;
}

/** Advance `ms` in steps of `step`, the worker beating after each step (a healthy event loop). */
async function beating(r: Rig, w: FakeWorker, ms: number, step = 200): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    w.say({ t: 'beat' });
    await r.clock.advance(step);
  }
}

test('watchdog: a serving worker that keeps beating is never judged; one silent for watchdogTimeout is killed, HOTLINE_E_WORKER_HUNG, restarted with backoff', async () => {
  const r = rig({ watchdogTimeout: 1_000 });
  await r.sup.start();
  const first = r.forks[0]!;
  assert.equal((first.received[1] as Extract<ToWorker, { t: 'start' }>).config.tuning?.watchdogTimeout, 1_000, 'the worker beats at the pace the supervisor judges by');
  await beating(r, first, 5_000);
  assert.deepEqual(first.signals, [], 'beats every 200 ms: alive');

  // The last beat, then the loop blocks.
  first.say({ t: 'beat' });
  await r.clock.advance(999);
  assert.deepEqual(first.signals, []);
  await r.clock.advance(1);
  assert.deepEqual(first.signals, ['SIGKILL'], 'killed once silent for 1 000 ms');
  await settle();
  assert.deepEqual(r.clock.pending, [100], 'the restart path, with its backoff');
  await r.clock.advance(100);
  assert.equal(r.forks.length, 2);
  const s = await status(r);
  assert.equal(s.supervisor.workerPid, r.forks[1]!.pid);
  assert.equal(s.supervisor.restarts, 1);
  assert.equal(s.supervisor.watchdog.hangs, 1);
  assert.equal(s.supervisor.watchdog.last?.code, 'HOTLINE_E_WORKER_HUNG');
  assert.equal(s.supervisor.watchdog.last?.pid, first.pid);
  assert.ok(s.supervisor.watchdog.last!.silentMs >= 1_000);
});

test('watchdog: not armed before the first beat (a worker still starting Node, or of an older build); other messages keep an armed one alive', async () => {
  const r = rig({ watchdogTimeout: 1_000 });
  await r.sup.start();
  const w = r.forks[0]!;
  await r.clock.advance(60_000);
  assert.deepEqual(w.signals, [], 'never beat: never judged (the ready timeout bounds its start)');
  w.say({ t: 'beat' });
  // An export's connection messages, with no beat between them: the loop runs.
  for (let i = 0; i < 10; i++) {
    await r.clock.advance(500);
    w.say({ t: 'ack', n: i, items: i });
  }
  assert.deepEqual(w.signals, []);
  await r.clock.advance(1_000);
  assert.deepEqual(w.signals, ['SIGKILL']);
});

test('watchdog: a restarted worker that hangs in its start (plugin init) is killed too, and the next wait doubles', async () => {
  const r = rig({ watchdogTimeout: 500, script: (w, n) => (n === 1 ? healthy(w) : w.on('sent', (m: ToWorker) => m.t === 'start' && w.say({ t: 'beat' }))) });
  await r.sup.start();
  r.forks[0]!.exit(1);
  await settle();
  await r.clock.advance(100);
  const second = r.forks[1]!;
  await settle();
  await r.clock.advance(499);
  assert.deepEqual(second.signals, []);
  await r.clock.advance(1);
  assert.deepEqual(second.signals, ['SIGKILL'], 'killed by the watchdog at 500 ms, before its 1 000 ms ready timeout');
  await settle();
  assert.deepEqual(r.clock.pending, [200]);
  assert.equal((await status(r).catch((err: { code: string }) => err.code)) as unknown, 'HOTLINE_E_WORKER_EXIT', 'no worker while the restart waits');
});

test('watchdog: an upgrade whose new worker hangs while loading aborts; the new one is killed and the old one keeps serving', async () => {
  const r = await upgradingWithWatchdog((w) => w.on('sent', (m: ToWorker) => m.t === 'start' && w.say({ t: 'beat' })));
  const up = r.sup.upgrade();
  await settle();
  await beating(r, r.old, 400, 100);
  const s = await up;
  assert.equal(s.outcome, 'aborted');
  assert.equal(s.error?.code, 'HOTLINE_E_UPGRADE_WORKER_EXIT');
  assert.deepEqual(r.forks[1]!.signals, ['SIGKILL']);
  assert.deepEqual(r.old.signals, [], 'the old worker beat all along');
  assert.equal(r.sup.workerPid, r.old.pid);
  assert.equal(r.sup.state, 'running');
  assert.equal((await status(r)).supervisor.watchdog.last?.pid, r.forks[1]!.pid);
});

test('watchdog: the old worker hangs during an upgrade: killed, the upgrade aborts, a fresh worker is started', async () => {
  const r = await upgradingWithWatchdog(readyThen((w) => w.on('sent', (m: ToWorker) => m.t === 'start' && w.say({ t: 'beat' }))));
  r.old.removeAllListeners('sent');
  r.old.say({ t: 'beat' });
  const up = r.sup.upgrade();
  await settle();
  assert.equal(r.old.kinds.at(-1), 'export');
  // The new worker beats; the old one, exporting, is stuck.
  await beating(r, r.forks[1]!, 400, 100);
  const s = await up;
  assert.equal(s.error?.code, 'HOTLINE_E_WORKER_EXIT');
  assert.deepEqual(r.old.signals, ['SIGKILL']);
  await settle();
  await r.clock.advance(100);
  assert.equal(r.forks.length, 3, 'restarted as after any crash');
});

test('watchdog: a stop while the worker is hung ends within shutdownTimeout, the worker killed (never left behind)', async () => {
  const r = rig({ watchdogTimeout: 60_000, script: (w) => w.on('sent', (m: ToWorker) => m.t === 'start' && w.say({ t: 'ready', plugin: { name: 'p', version: '1' } })) });
  await r.sup.start();
  const w = r.forks[0]!;
  w.say({ t: 'beat' });
  await r.clock.advance(1_000);
  let code: number | undefined;
  void r.sup.stop().then((c) => (code = c));
  await settle();
  assert.equal(w.kinds.at(-1), 'shutdown', 'asked first');
  await r.clock.advance(3_999);
  assert.equal(code, undefined, 'a worker that might still be closing is given the shutdown timeout');
  await r.clock.advance(1);
  await settle();
  assert.deepEqual(w.signals, ['SIGKILL'], 'silent for shutdownTimeout (5 000 ms) during the stop: killed, not the 60 s watchdogTimeout');
  assert.equal(code, 1);
  assert.equal(r.forks.length, 1, 'no restart');
});

/** upgrading(), with a 300 ms watchdog: shorter than the ready (1 000) and ack (500) timeouts. */
async function upgradingWithWatchdog(next: (w: FakeWorker) => void): Promise<Rig & { old: FakeWorker }> {
  const r = rig({ watchdogTimeout: 300, script: (w, n) => (n === 1 ? healthy(w) : next(w)) });
  await r.sup.start();
  return Object.assign(r, { old: r.forks[0]! });
}

// ── issue 11: last known good ────────────────────────────────────────────────────────────────────────────────────

/** A build as a worker reports it (its hash checked by the supervisor), for the entry the rig's supervisor runs. */
function reported(code: string): Bundle {
  const entry = path.resolve('plugin.ts');
  return { code, map: '{}', entry, inputs: [entry], hash: hashOf(code) };
}

test('last known good: a worker that dies while its new build is on probation is restarted on the build before it', async () => {
  const a = reported('a');
  const b = reported('b');
  const r = rig({ script: (w, n) => (healthy(w), n === 1 && w.on('sent', (m: ToWorker) => m.t === 'start' && w.say({ t: 'serving', build: a }))) });
  await r.sup.start();
  await settle();
  const first = r.forks[0]!;
  first.say({ t: 'serving', build: { ...b, hash: 'ffffffffffff' } });
  first.say({ t: 'serving', build: b });
  first.exit(1);
  await settle();
  await r.clock.advance(r.clock.pending[0]!);
  const start = r.forks[1]!.received.find((m) => m.t === 'start');
  assert.equal(start?.t === 'start' && start.config.build?.hash, a.hash, 'the restart carries the last known good build');
  assert.equal(start?.t === 'start' && start.config.afterDeath, true, 'and says the worker before it died (its sessions mark replays)');
  const firstStart = r.forks[0]!.received.find((m) => m.t === 'start');
  assert.equal(firstStart?.t === 'start' && firstStart.config.build, undefined, 'the first worker builds from disk');
  assert.equal(firstStart?.t === 'start' && firstStart.config.afterDeath, undefined);
  // The forged report (its code does not hash to its hash) was refused: b, not it, is the rejected build.
  const res = (await r.admin.handler!('status', { force: false })) as { supervisor: { lastKnownGood: { rejected: string[]; fallbacks: Array<{ code: string }> } } };
  assert.deepEqual(res.supervisor.lastKnownGood.rejected, [b.hash]);
  assert.equal(res.supervisor.lastKnownGood.fallbacks[0]?.code, 'HOTLINE_E_WORKER_LKG');
  assert.equal(await r.sup.stop(), 0);
});

test('crash loop: three restarted workers in a row that die before ready end the supervisor with exit code 1', { timeout: 10_000 }, async () => {
  const r = rig({ script: (w, n) => (n === 1 ? healthy(w) : w.on('sent', (m: ToWorker) => m.t === 'start' && w.exit(1))) });
  await r.sup.start();
  const stopped = r.sup.whenStopped();
  r.forks[0]!.exit(1);
  for (let i = 0; i < 3; i++) {
    await settle();
    if (r.clock.pending.length > 0) await r.clock.advance(Math.max(...r.clock.pending));
  }
  await settle();
  assert.equal(await stopped, 1);
  assert.equal(r.forks.length, 4, 'the first worker and three restarts, then no more');
  assert.equal(r.sup.state, 'stopped');
  assert.equal(r.admin.closed, 1);
  assert.equal(r.closedHandles, 1, 'the listener is closed');
});
