/**
 * The last-resort rule (src/host/last-resort.ts) with a fake process, logger and exit: which escaped errors are
 * served on and which exit with EXIT_INTERNAL, how each is attributed, that it counts and bounds its log lines.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { HotlineError } from '../../src/errors.js';
import { EXIT_INTERNAL, installLastResort, judge, lastResortCounts } from '../../src/host/last-resort.js';
import { attributeError } from '../../src/load/live-versions.js';

const OURS = fileURLToPath(new URL('../../src/connection/dispatcher.ts', import.meta.url));

/** An error with exactly these frames. */
function withStack(message: string, frames: string[], Cls: new (m: string) => Error = Error): Error {
  const e = new Cls(message);
  e.stack = `Error: ${message}\n` + frames.map((f) => `    at ${f}`).join('\n');
  return e;
}

const pluginFrame = 'onMessage (hotline-plugin:echo@1.0.0/plugin.ts.bundle.js:12:3)';
const hotlineFrame = `Dispatcher.run (${OURS}:40:5)`;
const nodeFrame = 'process.processTicksAndRejections (node:internal/process/task_queues:77:11)';

test('judge: a rejection is always served on, blamed on the innermost owned frame', () => {
  assert.deepEqual(judge('rejection', withStack('x', [pluginFrame, hotlineFrame])), { code: 'HOTLINE_E_PLUGIN_ESCAPED', source: 'plugin', action: 'continue' });
  assert.deepEqual(judge('rejection', withStack('x', [hotlineFrame, pluginFrame])), { code: 'HOTLINE_E_INTERNAL', source: 'hotline', action: 'continue' });
  assert.deepEqual(judge('rejection', 'a string'), { code: 'HOTLINE_E_INTERNAL', source: 'hotline', action: 'continue' });
});

test('judge: an exception through hotline code exits; one from plugin code alone, or a socket error, is served on', () => {
  assert.equal(judge('exception', withStack('x', [hotlineFrame, nodeFrame])).action, 'exit');
  assert.equal(judge('exception', withStack('x', [pluginFrame, hotlineFrame])).action, 'exit', 'plugin code called by hotline: hotline was unwound');
  assert.deepEqual(judge('exception', withStack('x', [pluginFrame, nodeFrame])), { code: 'HOTLINE_E_PLUGIN_ESCAPED', source: 'plugin', action: 'continue' });
  assert.equal(judge('exception', null).action, 'exit', 'nothing readable counts as ours');
  assert.equal(judge('exception', 42).action, 'exit');
  const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
  assert.deepEqual(judge('exception', reset), { code: 'HOTLINE_E_INTERNAL', source: 'socket', action: 'continue' });
});

test('judge: a HotlineError thrown by hotline to a plugin caller is the caller’s; a truncated stack exits', () => {
  const refusal = withStack('closed', [hotlineFrame, pluginFrame, nodeFrame], class extends HotlineError {
    constructor(m: string) {
      super('HOTLINE_E_CONNECTION_CLOSED', m);
    }
  });
  assert.deepEqual(judge('exception', refusal), { code: 'HOTLINE_E_PLUGIN_ESCAPED', source: 'plugin', action: 'continue' });
  const deep = withStack('x', Array.from({ length: Error.stackTraceLimit }, () => pluginFrame));
  assert.equal(judge('exception', deep).action, 'exit', 'a stack cut at the limit may hide a hotline frame');
});

function fakes() {
  const proc = new EventEmitter();
  const lines: Array<{ level: string; obj: Record<string, unknown>; msg: string }> = [];
  const exits: number[] = [];
  let t = 0;
  const deps = {
    process: proc,
    logger: {
      error: (obj: object, msg: string) => lines.push({ level: 'error', obj: obj as Record<string, unknown>, msg }),
      fatal: (obj: object, msg: string) => lines.push({ level: 'fatal', obj: obj as Record<string, unknown>, msg }),
    },
    exit: (code: number) => exits.push(code),
    now: () => t,
  };
  return { proc, lines, exits, deps, tick: (ms: number) => (t += ms) };
}

test('installed: a rejection is logged with its code and counted; an exception through hotline exits 70 once', () => {
  const f = fakes();
  const lr = installLastResort('worker', f.deps);
  try {
    const before = lastResortCounts();
    f.proc.emit('unhandledRejection', withStack('lost', [pluginFrame]));
    assert.equal(f.exits.length, 0);
    assert.equal(f.lines[0]!.obj.code, 'HOTLINE_E_PLUGIN_ESCAPED');
    assert.equal(f.lines[0]!.obj.action, 'continue');
    f.proc.emit('uncaughtException', withStack('half-done', [hotlineFrame]));
    assert.deepEqual(f.exits, [EXIT_INTERNAL]);
    assert.equal(f.lines[1]!.level, 'fatal');
    assert.equal(f.lines[1]!.obj.code, 'HOTLINE_E_INTERNAL');
    f.proc.emit('uncaughtException', withStack('after', [hotlineFrame]));
    assert.deepEqual(f.exits, [EXIT_INTERNAL], 'exit is called once');
    const after = lastResortCounts();
    assert.equal(after.rejections - before.rejections, 1);
    assert.equal(after.exceptions - before.exceptions, 1);
    assert.equal(after.last?.code, 'HOTLINE_E_INTERNAL');
  } finally {
    lr.uninstall();
  }
  assert.equal(f.proc.listenerCount('uncaughtException'), 0, 'uninstall removes its listeners');
});

test('installed: a plugin escape is handed to blame (the live-version count), a hotline one is not', () => {
  const f = fakes();
  const blamed: Array<[string, string]> = [];
  const lr = installLastResort('worker', { ...f.deps, blame: (err, kind) => blamed.push([(err as Error).message, kind]) });
  try {
    f.proc.emit('unhandledRejection', withStack('forgotten', [pluginFrame]));
    f.proc.emit('unhandledRejection', withStack('ours', [hotlineFrame]));
    assert.deepEqual(blamed, [['forgotten', 'unhandled rejection']]);
  } finally {
    lr.uninstall();
  }
});

test('installed: a storm is counted in full but logs at most 10 lines a second, then says how many it skipped', () => {
  const f = fakes();
  const lr = installLastResort('worker', f.deps);
  try {
    const before = lastResortCounts().rejections;
    for (let i = 0; i < 1000; i++) f.proc.emit('unhandledRejection', new Error(`r${i}`));
    assert.equal(lastResortCounts().rejections - before, 1000);
    assert.equal(f.lines.length, 10);
    f.tick(1000);
    f.proc.emit('unhandledRejection', new Error('later'));
    assert.equal(f.lines[10]!.obj.suppressed, 990);
    assert.equal(f.exits.length, 0);
    // A second install on the same process is a no-op: one handler, one log line per error.
    const again = installLastResort('worker', f.deps);
    assert.equal(f.proc.listenerCount('unhandledRejection'), 1);
    again.uninstall();
  } finally {
    lr.uninstall();
  }
});

test('installed: a logger that throws does not stop the exit', () => {
  const f = fakes();
  const lr = installLastResort('supervisor', {
    ...f.deps,
    logger: {
      error: () => {
        throw new Error('disk full');
      },
      fatal: () => {
        throw new Error('disk full');
      },
    },
  });
  try {
    f.proc.emit('uncaughtException', new Error('boom'));
    assert.deepEqual(f.exits, [EXIT_INTERNAL]);
  } finally {
    lr.uninstall();
  }
});

test('judge and attributeError read a stack the same way: frames only, never the message line', () => {
  const cases: Array<[Error, boolean]> = [
    [withStack('x', [pluginFrame, nodeFrame]), true],
    [withStack('x', [nodeFrame, pluginFrame]), true],
    [withStack('x', [hotlineFrame, nodeFrame]), false],
    // A message that quotes a plugin filename (a plugin's error text, a path in a log line) is not a plugin frame.
    [withStack('cannot read hotline-plugin:v1/plugin.ts.bundle.js', [nodeFrame]), false],
  ];
  for (const [err, plugin] of cases) {
    assert.equal(judge('rejection', err).source, plugin ? 'plugin' : 'hotline', err.stack);
    assert.equal(attributeError(err) !== undefined, plugin, err.stack);
  }
  assert.equal(attributeError(withStack('x', [pluginFrame]))?.label, 'echo@1.0.0');
});
