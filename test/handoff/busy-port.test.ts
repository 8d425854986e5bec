/**
 * A port another process holds (issue 10, fault 1). libuv defers a bind's EADDRINUSE to listen(), so the supervisor's
 * bind-without-listen used to "succeed"; the worker then called listen() on an unbound socket, which Linux binds to
 * 0.0.0.0 and a random port: `hotline start` printed the port asked for and served on every interface elsewhere.
 * Now the bind fails with HOTLINE_E_LISTEN before anything is printed, and a worker refuses to serve a listener
 * anywhere but where the supervisor bound it. Real sockets, the real bin, a real worker process.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { bindListener } from '../../src/handoff/listeners.js';
import { HotlineProcess } from '../e2e/hotline-process.js';
import { counterPlugin, pluginDir } from '../helpers/plugin-dir.js';
import { listeningSockets } from '../helpers/listening-sockets.js';
import { forkWorkerMain } from './worker-child.js';

/** A real listener holding 127.0.0.1:<port>. */
async function holdPort(): Promise<{ server: net.Server; port: number }> {
  const server = net.createServer((s) => s.end('holder\n'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as net.AddressInfo).port };
}

test('bindListener: a port taken by another listener is HOTLINE_E_LISTEN, not a handle bound to nothing', async () => {
  const { server, port } = await holdPort();
  try {
    await assert.rejects(bindListener('127.0.0.1', port), (err: { code?: string; message?: string }) => {
      assert.equal(err.code, 'HOTLINE_E_LISTEN');
      assert.match(err.message!, new RegExp(`127\\.0\\.0\\.1:${port}.*EADDRINUSE`));
      return true;
    });
    // A free port still binds, to exactly the address asked for.
    const free = await bindListener('127.0.0.1', 0);
    assert.equal(free.host, '127.0.0.1');
    assert.ok(free.port > 0);
    free.handle.close();
  } finally {
    server.close();
  }
});

test('hotline start on a busy port exits 1 with HOTLINE_E_LISTEN, prints no ready line, listens nowhere', { timeout: 60_000 }, async () => {
  const { server, port } = await holdPort();
  const p = pluginDir(counterPlugin('v1'));
  const proc = new HotlineProcess(['start', p.entry, '--port', String(port), '--admin', path.join(p.dir, 'admin.sock')], p.dir);
  try {
    const printed = await proc.waitFor(() => proc.stdoutLines[0], 20_000, 'a stdout line').catch(() => undefined);
    if (printed !== undefined) {
      // Wait for the worker to listen, to show where it does (the bug: 0.0.0.0 and a random port).
      const deadline = Date.now() + 5_000;
      let socks = listeningSockets(proc.child.pid!);
      while (socks.length === 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        socks = listeningSockets(proc.child.pid!);
      }
      assert.fail(`printed "${printed}" although ${port} is taken, and listens on ${JSON.stringify(socks)}`);
    }
    const exit = await proc.exited;
    assert.equal(exit.code, 1);
    assert.match(proc.stderrLines.join('\n'), new RegExp(`^hotline: HOTLINE_E_LISTEN: cannot listen on 127\\.0\\.0\\.1:${port}`, 'm'));
    assert.deepEqual(proc.stdoutLines, []);
    // The holder was never disturbed.
    const reply = await new Promise<string>((resolve, reject) => {
      const c = net.connect(port, '127.0.0.1');
      c.setEncoding('utf8').once('data', resolve).once('error', reject);
    });
    assert.equal(reply, 'holder\n');
  } finally {
    proc.kill('SIGKILL');
    await proc.exited;
    server.close();
    p.remove();
  }
});

test('a worker handed a listener that is not bound where the supervisor said refuses to start: fatal HOTLINE_E_LISTEN', { timeout: 60_000 }, async () => {
  const { server, port } = await holdPort();
  const p = pluginDir(counterPlugin('v1'));
  // What the old supervisor handed down: bind failed (deferred by libuv), so the socket is bound to nothing.
  const unbound = (net as unknown as { _createServerHandle(a: string, p: number, t: number): object })._createServerHandle('127.0.0.1', port, 4);
  const w = forkWorkerMain();
  try {
    w.send({ t: 'listener', index: 0, bound: { host: '127.0.0.1', port } }, unbound);
    w.send({ t: 'start', config: { entry: p.entry, listen: [{ transport: 'ws', host: '127.0.0.1', port }], watch: false, dev: false, upgrade: false } });
    const first = await w.next();
    if (first.t === 'ready') assert.fail(`the worker serves, on ${JSON.stringify(listeningSockets(w.child.pid!))}`);
    assert.equal(first.t, 'fatal');
    assert.equal(first.t === 'fatal' && first.error.code, 'HOTLINE_E_LISTEN');
    assert.deepEqual(listeningSockets(w.child.pid!), []);
  } finally {
    w.child.kill('SIGKILL');
    server.close();
    p.remove();
  }
});
