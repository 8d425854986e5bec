/**
 * The worker's state machine (src/handoff/worker.ts): each supervisor message is taken only in the phases that
 * expect it and refused by name otherwise (HOTLINE_E_WORKER_PHASE), answered where the supervisor waits for an
 * answer, and a socket that came with a refused message is closed. A real worker process, driven by hand.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import type { FromWorker } from '../../src/handoff/protocol.js';
import { bindListener } from '../../src/handoff/listeners.js';
import { counterPlugin, pluginDir } from '../helpers/plugin-dir.js';
import { wsClient } from '../helpers/clients.js';
import { forkWorkerMain } from './worker-child.js';

const phaseError = (m: FromWorker) => (m.t === 'nack' || (m.t === 'res' && !m.ok) ? m.error : undefined);

test('a worker refuses messages of another phase by name, and serves once started', { timeout: 60_000 }, async () => {
  const p = pluginDir(counterPlugin('v1'));
  const bound = await bindListener('127.0.0.1', 0);
  const w = forkWorkerMain();
  try {
    // waiting: nothing but listeners and start.
    w.send({ t: 'commit' });
    const commit = phaseError(await w.next());
    assert.equal(commit?.code, 'HOTLINE_E_WORKER_PHASE');
    assert.match(commit!.message, /"commit" refused: the worker is waiting/);

    w.send({ t: 'req', id: 7, cmd: 'reload' });
    const req = await w.next();
    assert.equal(req.t === 'res' && req.id, 7);
    assert.equal(phaseError(req)?.code, 'HOTLINE_E_WORKER_PHASE');

    // A connection handed to a worker that is not adopting: refused, and the socket is closed rather than kept.
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    const clientClosed = new Promise<void>((resolve) => client.on('close', () => resolve()).on('error', () => undefined));
    const socket = await accepted;
    w.send({ t: 'conn', kind: 'tcp', framing: 'lines', remoteAddress: '127.0.0.1', protocol: '', head: new Uint8Array(), opened: true, state: undefined, messages: [] }, socket);
    assert.equal(phaseError(await w.next())?.code, 'HOTLINE_E_WORKER_PHASE');
    socket.destroy(); // our copy; the worker's copy is what must go too
    await clientClosed;
    server.close();

    // Started, it serves; then an upgrade's adoption message is refused in turn.
    w.send({ t: 'listener', index: 0, bound: { host: bound.host, port: bound.port } }, bound.handle);
    w.send({ t: 'start', config: { entry: p.entry, listen: [{ transport: 'ws', host: '127.0.0.1', port: 0 }], watch: false, dev: false, upgrade: false } });
    assert.equal((await w.next()).t, 'ready');
    const c = await wsClient(`ws://127.0.0.1:${bound.port}/`);
    c.send('x');
    assert.match(await c.inbox.next(), /^v1:1:/);

    w.send({ t: 'state', plugin: 'counter', version: 'v1', state: {} });
    const state = phaseError(await w.next());
    assert.equal(state?.code, 'HOTLINE_E_WORKER_PHASE');
    assert.match(state!.message, /"state" refused: the worker is serving/);
    w.send({ t: 'req', id: 8, cmd: 'status' });
    const status = await w.next();
    assert.equal(status.t === 'res' && status.ok, true, 'a serving worker answers status');

    // Shutdown: graceful (1012) and exit 0; a second one is a no-op, not a refusal.
    w.send({ t: 'shutdown' });
    w.send({ t: 'shutdown' });
    assert.equal((await c.closed).code, 1012);
    assert.deepEqual(await w.exited, { code: 0, signal: null });
  } finally {
    w.child.kill('SIGKILL');
    bound.handle.close();
    p.remove();
  }
});

test('a worker given no listener socket refuses to start (HOTLINE_E_LISTEN) instead of binding one itself', { timeout: 60_000 }, async () => {
  const p = pluginDir(counterPlugin('v1'));
  const w = forkWorkerMain();
  try {
    w.send({ t: 'start', config: { entry: p.entry, listen: [{ transport: 'ws', host: '127.0.0.1', port: 0 }], watch: false, dev: false, upgrade: false } });
    const first = await w.next();
    assert.equal(first.t, 'fatal');
    assert.equal(first.t === 'fatal' && first.error.code, 'HOTLINE_E_LISTEN');
    assert.match(first.t === 'fatal' ? first.error.message : '', /no bound socket was passed/);
  } finally {
    w.child.kill('SIGKILL');
    p.remove();
  }
});
