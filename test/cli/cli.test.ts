/**
 * The `hotline` command end to end: the real bin (dist/, built by pretest), real sockets, the real admin socket and
 * real signals. Each test spawns its own host in its own temp dir.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import type { HostStatus } from '../../src/host/host.js';
import { HotlineProcess, runHotline } from '../e2e/hotline-process.js';
import { tcpClient, wsClient } from '../helpers/clients.js';
import { counterPlugin, pluginDir, type PluginDir } from '../helpers/plugin-dir.js';

function mode(file: string): number {
  return statSync(file).mode & 0o777;
}

async function startHost(p: PluginDir, args: string[] = [], command = 'start') {
  const admin = path.join(p.dir, 'admin.sock');
  const started = await HotlineProcess.start([command, p.entry, '--port', '0', '--admin', admin, ...args], p.dir);
  return { ...started, admin };
}

test('start, reload, a failed reload, rollback, status --json and SIGHUP through the real CLI', async () => {
  const p = pluginDir(counterPlugin('v1'));
  const { proc, ready, admin } = await startHost(p);
  try {
    assert.match(ready.line, /^hotline: serving counter@v1 on ws:\/\/127\.0\.0\.1:\d+\/ admin /);
    assert.equal(ready.label, 'counter@v1');
    assert.equal(ready.admin, admin);
    assert.equal(mode(admin), 0o600, 'only the owner may talk to the admin socket');

    const ws = await wsClient(ready.url);
    ws.send('a');
    assert.equal(await ws.inbox.next(), 'v1:1:1|a');

    // Nothing to roll back to yet.
    const none = await runHotline(['rollback', '--admin', admin], p.dir);
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /HOTLINE_E_NO_PREVIOUS/);

    p.write(counterPlugin('v2'));
    const reload = await runHotline(['reload', '--admin', admin], p.dir);
    assert.equal(reload.code, 0, reload.stderr);
    assert.match(reload.stdout, /^reloaded: now serving counter@v2 \(hash [0-9a-f]+, [\d.]+ ms\)\n$/);
    ws.send('b');
    assert.equal(await ws.inbox.next(), 'v2:2:2|b');

    // A broken plugin: the reload fails with the code and message, and v2 keeps serving with its state.
    p.write('export default definePlugin({ name: "x", version: "bad", api: 1, onMessage() { ');
    const broken = await runHotline(['reload', '--admin', admin], p.dir);
    assert.notEqual(broken.code, 0);
    assert.match(broken.stderr, /^hotline: HOTLINE_E_BUILD: plugin\.ts:\d+:\d+: .+/m);
    ws.send('c');
    assert.equal(await ws.inbox.next(), 'v2:3:3|c');

    const rollback = await runHotline(['rollback', '--admin', admin], p.dir);
    assert.equal(rollback.code, 0, rollback.stderr);
    assert.match(rollback.stdout, /^rolled back: now serving counter@v1 /);
    ws.send('d');
    assert.equal(await ws.inbox.next(), 'v1:4:4|d', 'the rollback migrated both counters down');

    // v3 throws on 'boom': a handler error, counted against v3 in status, never fatal.
    p.write(counterPlugin('v3').replace('ctx.state.total++;', "if (data === 'boom') throw new Error('boom'); ctx.state.total++;"));
    const from = proc.logs.length;
    proc.kill('SIGHUP');
    const hup = await proc.waitForSwap('counter@v3', from);
    assert.equal(hup.swap?.trigger, 'signal');
    ws.send('e');
    assert.equal(await ws.inbox.next(), 'v3:5:5|e');
    ws.send('boom');
    ws.send('f');
    assert.equal(await ws.inbox.next(), 'v3:6:6|f', 'the connection survives a handler error');

    const res = await runHotline(['status', '--admin', admin, '--json'], p.dir);
    assert.equal(res.code, 0, res.stderr);
    const s = JSON.parse(res.stdout) as HostStatus;
    // The host that answers is the one we started: identified by its listener (a supervised start may report the
    // pid of its worker process rather than its own).
    assert.equal(s.listen[0]?.url, ready.url);
    assert.ok(Number.isInteger(s.pid));
    assert.equal(s.state, 'running');
    assert.deepEqual(
      { name: s.plugin?.name, version: s.plugin?.version, entry: s.plugin?.entry },
      { name: 'counter', version: 'v3', entry: 'plugin.ts' },
    );
    assert.match(s.plugin!.hash, /^[0-9a-f]{8,}$/);
    assert.ok(s.uptimeMs > 0);
    assert.equal(s.connections, 1);
    assert.deepEqual(s.messages, { in: 7, out: 6, dropped: 0 });
    assert.deepEqual(
      s.versions.map((v) => [v.version, v.messages, v.errors, v.lastError?.code]),
      [
        ['v1', 1, 0, undefined],
        ['v2', 2, 0, undefined],
        ['v1', 1, 0, undefined],
        ['v3', 3, 1, 'HOTLINE_E_HANDLER'],
      ],
    );
    assert.deepEqual(
      s.swaps.map((r) => [r.trigger, r.outcome, r.to, r.error?.code]),
      [
        ['start', 'switched', 'counter@v1', undefined],
        ['rollback', 'aborted', undefined, 'HOTLINE_E_NO_PREVIOUS'],
        ['admin', 'switched', 'counter@v2', undefined],
        ['admin', 'aborted', undefined, 'HOTLINE_E_BUILD'],
        ['rollback', 'switched', 'counter@v1', undefined],
        ['signal', 'switched', 'counter@v3', undefined],
      ],
    );
    for (const r of s.swaps) {
      assert.ok(r.totalMs >= 0);
      assert.ok(typeof r.durations.building === 'number', 'every swap starts by building');
      if (r.outcome === 'switched') {
        assert.deepEqual(Object.keys(r.durations), ['building', 'loading', 'preparing', 'suspending', 'migrating', 'switching', 'disposing']);
      } else {
        assert.equal(r.phase, 'building', 'both failures happen before anything loads');
      }
    }

    const human = await runHotline(['status', '--admin', admin], p.dir);
    assert.equal(human.code, 0);
    assert.match(human.stdout, /^plugin {6}counter@v3 \(hash [0-9a-f]+, seq \d+\) from plugin\.ts$/m);
    assert.match(human.stdout, /aborted in building: HOTLINE_E_BUILD/);

    ws.ws.close();
    await ws.closed;
  } finally {
    proc.kill('SIGKILL');
    await proc.exited;
    p.remove();
  }
});

test('a SIGHUP while the host is still starting reloads once it is up instead of killing it', async () => {
  const p = pluginDir(counterPlugin('v1'));
  const marker = path.join(p.dir, 'init-started');
  // init() marks that the host is inside createHost(), then holds the start open long enough for the signal.
  p.write(
    counterPlugin('v1').replace(
      'init: () => ({ total: 0 }),',
      `async init() {
        require('node:fs').writeFileSync(${JSON.stringify(marker)}, '');
        await new Promise((resolve) => setTimeout(resolve, 500));
        return { total: 0 };
      },`,
    ),
  );
  const admin = path.join(p.dir, 'admin.sock');
  const proc = new HotlineProcess(['start', p.entry, '--port', '0', '--admin', admin], p.dir);
  try {
    for (let i = 0; i < 400 && !existsSync(marker); i++) await new Promise((resolve) => setTimeout(resolve, 25));
    assert.ok(existsSync(marker), 'init() ran');
    proc.kill('SIGHUP');
    const swap = await proc.waitFor(() => proc.logs.find((l) => l.swap?.trigger === 'signal'), 15_000, 'the deferred SIGHUP reload');
    // Nothing changed on disk since the first build: the reload ran and kept the running version (issue 10, fault 9).
    assert.equal(swap.swap?.outcome, 'unchanged');
    assert.ok(proc.stdoutLines.some((l) => l.startsWith('hotline: serving counter@v1 on ')));
  } finally {
    proc.kill('SIGKILL');
    await proc.exited;
    p.remove();
  }
});

for (const [transport, signal] of [
  ['ws', 'SIGTERM'],
  ['ws', 'SIGINT'],
  ['tcp', 'SIGTERM'],
  ['tcp', 'SIGINT'],
] as const) {
  test(`${signal} shuts a ${transport} host down gracefully: ${transport === 'ws' ? 'close 1012' : 'clean end'}, exit 0`, async () => {
    const p = pluginDir(counterPlugin('v1'));
    const { proc, ready, admin } = await startHost(p, ['--transport', transport]);
    try {
      let ending: Promise<unknown>;
      if (transport === 'ws') {
        const clients = await Promise.all([wsClient(ready.url), wsClient(ready.url)]);
        clients[0]!.send('x');
        assert.equal(await clients[0]!.inbox.next(), 'v1:1:1|x');
        ending = Promise.all(clients.map((c) => c.closed.then((x) => x.code)));
      } else {
        const port = Number(new URL(ready.url).port);
        const clients = await Promise.all([tcpClient(port), tcpClient(port)]);
        // A round trip on each, so the host holds both connections (not just the kernel's backlog) at the signal.
        clients[0]!.send('x');
        assert.equal(await clients[0]!.inbox.next(), 'v1:1:1|x');
        clients[1]!.send('y');
        assert.equal(await clients[1]!.inbox.next(), 'v1:1:2|y');
        // A clean end is a FIN ('end'), not a reset ('error').
        ending = Promise.all(
          clients.map(
            (c) =>
              new Promise((resolve) => {
                let how = 'close without end';
                c.socket.once('end', () => (how = 'end'));
                c.socket.once('error', (err: NodeJS.ErrnoException) => (how = `error ${err.code}`));
                c.socket.once('close', () => resolve(how));
              }),
          ),
        );
      }
      proc.kill(signal);
      const [exit, endings] = await Promise.all([proc.exited, ending]);
      assert.deepEqual(exit, { code: 0, signal: null });
      assert.deepEqual(endings, transport === 'ws' ? [1012, 1012] : ['end', 'end']);
      assert.ok(proc.logs.some((l) => l.msg === `${signal}: shutting down gracefully`));
      assert.equal(existsSync(admin), false, 'the admin socket is removed on shutdown');
    } finally {
      proc.kill('SIGKILL');
      await proc.exited;
      p.remove();
    }
  });
}

test('SIGTERM exits 0 even when the plugin leaked a handle that would keep the process alive', async () => {
  const p = pluginDir(
    counterPlugin('v1').replace(
      'init: () => ({ total: 0 }),',
      "init() { require('node:net').createServer().listen(0, '127.0.0.1'); return { total: 0 }; },",
    ),
  );
  const { proc } = await startHost(p);
  try {
    proc.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise((resolve) => (timer = setTimeout(() => resolve('still running after 15 s'), 15_000)));
    assert.deepEqual(await Promise.race([proc.exited, hung]), { code: 0, signal: null });
    clearTimeout(timer);
  } finally {
    proc.kill('SIGKILL');
    await proc.exited;
    p.remove();
  }
});

test('SIGTERM is bounded by the shutdown timeout: a TCP client that never closes its side is cut off, exit 0', async () => {
  const p = pluginDir(counterPlugin('v1'));
  const { proc, ready } = await startHost(p, ['--transport', 'tcp']);
  try {
    // allowHalfOpen: this client receives the host's FIN and never sends its own, so only the timeout ends it.
    const socket = net.connect({ port: Number(new URL(ready.url).port), host: '127.0.0.1', allowHalfOpen: true });
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.on('error', () => undefined);
    // One round trip first, so the host holds the connection (not just the kernel's backlog) when the signal lands.
    const reply = new Promise((resolve) => socket.once('data', resolve));
    socket.write('x\n');
    assert.equal(String(await reply), 'v1:1:1|x\n');
    let sawEnd = false;
    socket.once('end', () => (sawEnd = true));
    proc.kill('SIGTERM');
    assert.deepEqual(await proc.exited, { code: 0, signal: null });
    assert.equal(sawEnd, true, 'the host ended its side first');
    socket.destroy();
  } finally {
    proc.kill('SIGKILL');
    await proc.exited;
    p.remove();
  }
});

test('without --admin the socket is .hotline/admin.sock under the cwd, mode 0600 in a 0700 dir', async () => {
  const p = pluginDir(counterPlugin('v1'));
  // Left by an earlier run or a checkout with a wider mode: start tightens it.
  mkdirSync(path.join(p.dir, '.hotline'));
  chmodSync(path.join(p.dir, '.hotline'), 0o755);
  const { proc, ready } = await HotlineProcess.start(['start', 'plugin.ts', '--port', '0'], p.dir);
  try {
    const sock = path.join(p.dir, '.hotline', 'admin.sock');
    assert.equal(mode(sock), 0o600);
    assert.equal(mode(path.dirname(sock)), 0o700);
    assert.ok(statSync(sock).isSocket());
    const res = await runHotline(['status', '--json'], p.dir);
    assert.equal(res.code, 0, res.stderr);
    assert.equal((JSON.parse(res.stdout) as HostStatus).listen[0]?.url, ready.url);
  } finally {
    proc.kill('SIGKILL');
    await proc.exited;
    p.remove();
  }
});

test('a stale admin.sock left by a kill -9 does not stop a new start; a live one does', async () => {
  const p = pluginDir(counterPlugin('v1'));
  const first = await startHost(p);
  first.proc.kill('SIGKILL');
  await first.proc.exited;
  assert.ok(statSync(first.admin).isSocket(), 'kill -9 leaves the socket file behind');
  const second = await startHost(p);
  try {
    const res = await runHotline(['status', '--admin', second.admin, '--json'], p.dir);
    assert.equal(res.code, 0, res.stderr);
    assert.equal((JSON.parse(res.stdout) as HostStatus).listen[0]?.url, second.ready.url);

    // A second host on the same admin socket would steal it from a live one: refused, and the first keeps it.
    const third = new HotlineProcess(['start', p.entry, '--port', '0', '--admin', second.admin], p.dir);
    const exit = await third.exited;
    assert.equal(exit.code, 1);
    assert.match(third.stderrLines.join('\n'), /hotline: HOTLINE_E_ADMIN: another hotline host is already serving/);
    const again = await runHotline(['status', '--admin', second.admin, '--json'], p.dir);
    assert.equal((JSON.parse(again.stdout) as HostStatus).listen[0]?.url, second.ready.url);
  } finally {
    second.proc.kill('SIGKILL');
    await second.proc.exited;
    p.remove();
  }
});

test('an --admin path that is not a socket is refused, never deleted', async () => {
  const p = pluginDir(counterPlugin('v1'));
  try {
    const notSocket = path.join(p.dir, 'notes.txt');
    writeFileSync(notSocket, 'keep me');
    const res = await runHotline(['start', p.entry, '--port', '0', '--admin', notSocket], p.dir);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /hotline: HOTLINE_E_ADMIN: .*not a socket/);
    assert.equal(readFileSync(notSocket, 'utf8'), 'keep me');
  } finally {
    p.remove();
  }
});

test('hotline status with no host running exits non-zero with HOTLINE_E_ADMIN_UNREACHABLE', async () => {
  const p = pluginDir(counterPlugin('v1'));
  try {
    for (const args of [['status'], ['status', '--admin', path.join(p.dir, 'none.sock'), '--json'], ['reload'], ['rollback']]) {
      const res = await runHotline(args, p.dir);
      assert.equal(res.code, 1, args.join(' '));
      assert.match(res.stderr, /^hotline: HOTLINE_E_ADMIN_UNREACHABLE: no hotline host answers on .*\.sock/);
      assert.equal(res.stdout, '');
    }
  } finally {
    p.remove();
  }
});

test('bad flags and entries print a coded error and exit non-zero', async () => {
  const p = pluginDir(counterPlugin('v1'));
  try {
    const cases: Array<[string[], RegExp]> = [
      [['start', 'plugin.ts', '--transport', 'foo'], /HOTLINE_E_CONFIG: --transport must be ws or tcp, got "foo"/],
      [['start', 'plugin.ts', '--port', 'abc'], /HOTLINE_E_CONFIG: --port must be .*"abc"/],
      [['start', 'plugin.ts', '--port', ''], /HOTLINE_E_CONFIG: --port must be /],
      [['start', 'plugin.ts', '--port', '70000'], /HOTLINE_E_CONFIG: --port must be /],
      [['start', 'plugin.ts', '--transport', 'tcp', '--framing', 'xml'], /HOTLINE_E_CONFIG: --framing must be lines or length/],
      [['start'], /HOTLINE_E_CONFIG: hotline start needs a plugin entry/],
      [['dev'], /HOTLINE_E_CONFIG: hotline dev needs a plugin entry/],
      [['start', 'missing.ts', '--port', '0'], /HOTLINE_E_ENTRY_MISSING: .*missing\.ts/],
      [['start', 'plugin.ts', '--bogus'], /HOTLINE_E_CONFIG: Unknown option '--bogus'/],
      [['launch'], /HOTLINE_E_CONFIG: unknown command "launch"/],
    ];
    for (const [args, expected] of cases) {
      const res = await runHotline(args, p.dir);
      assert.notEqual(res.code, 0, args.join(' '));
      assert.match(res.stderr, new RegExp(`^hotline: ${expected.source}`, 'm'), args.join(' '));
    }
    // A plugin that fails to load at start: coded error, and no admin socket left behind.
    p.write('export default 42;');
    const res = await runHotline(['start', 'plugin.ts', '--port', '0'], p.dir);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /^hotline: HOTLINE_E_PLUGIN_SHAPE: /m);
    assert.equal(existsSync(path.join(p.dir, '.hotline', 'admin.sock')), false);
  } finally {
    p.remove();
  }
});

test('hotline dev watches the plugin and prints readable swap lines with phases', async () => {
  const p = pluginDir(counterPlugin('v1'));
  const { proc, ready } = await startHost(p, [], 'dev');
  try {
    assert.equal(ready.label, 'counter@v1');
    const ws = await wsClient(ready.url);
    const from = proc.stderrLines.length;
    p.write(counterPlugin('v2'));
    const at = await proc.waitFor(
      () => {
        const i = proc.stderrLines.findIndex((l, k) => k >= from && / info {2}swapped to counter@v2 \(watch, [\d.]+ ms\)$/.test(l));
        return i === -1 || i + 1 >= proc.stderrLines.length ? undefined : i;
      },
      15_000,
      'a readable swap line',
    );
    assert.match(proc.stderrLines[at]!, /^\d\d:\d\d:\d\d\.\d{3} info {2}swapped to counter@v2/);
    assert.match(
      proc.stderrLines[at + 1]!,
      /^ +building [\d.]+ms → loading [\d.]+ms → preparing [\d.]+ms → suspending [\d.]+ms → migrating [\d.]+ms → switching [\d.]+ms → disposing [\d.]+ms$/,
    );
    ws.send('a');
    assert.equal(await ws.inbox.next(), 'v2:1:1|a');

    // A broken edit shows its code in the readable log, and v2 keeps serving.
    const before = proc.stderrLines.length;
    p.write(counterPlugin('v3').replace('onOpen', 'onOpen: 5, x'));
    await proc.waitFor(
      () => proc.stderrLines.slice(before).find((l) => /error swap aborted, counter@v2 keeps serving: HOTLINE_E_/.test(l)),
      15_000,
      'a readable swap error',
    );
    ws.send('b');
    assert.equal(await ws.inbox.next(), 'v2:2:2|b');
    ws.ws.close();
    await ws.closed;
  } finally {
    proc.kill('SIGKILL');
    await proc.exited;
    p.remove();
  }
});
