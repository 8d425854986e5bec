/**
 * The handle lane (src/handoff/handle-lane.ts) pairs each received descriptor with its message without Node's
 * per-handle ack. A real child process reads the lane; 2,000 real TCP sockets go through it, each message naming
 * its socket and padded to a varying size (some larger than a read) so that reads split frames anywhere. One wrong pairing fails the test.
 */
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { HandleLane } from '../../src/handoff/handle-lane.js';

const N = 2_000;

test('2,000 sockets through a lane arrive each with its own message, in order, none missing', async (t) => {
  const server = net.createServer();
  const accepted: net.Socket[] = [];
  server.on('connection', (s) => {
    s.pause();
    accepted.push(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const clients: net.Socket[] = [];
  t.after(() => {
    for (const c of clients) c.destroy();
    for (const s of accepted) s.destroy();
    server.close();
  });
  // Connect in batches so the listen backlog never overflows.
  for (let i = 0; i < N; i += 200) {
    const batch = Array.from({ length: Math.min(200, N - i) }, () => {
      const c = net.connect(port, '127.0.0.1');
      clients.push(c);
      c.on('error', () => undefined);
      return new Promise((resolve) => c.once('connect', resolve));
    });
    await Promise.all(batch);
  }
  for (let i = 0; i < 500 && accepted.length < N; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(accepted.length, N);

  const child = fork(path.join(import.meta.dirname, 'lane-reader-fixture.ts'), [], {
    execArgv: ['--import', 'tsx'],
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc', 'pipe'],
  });
  t.after(() => child.kill('SIGKILL'));
  const messages: Array<Record<string, number | boolean>> = [];
  const next = () => new Promise<Record<string, number | boolean>>((resolve) => {
    if (messages.length > 0) return resolve(messages.shift()!);
    child.once('message', (m: Record<string, number | boolean>) => resolve(m));
  });
  assert.deepEqual(await next(), { ready: true });

  // This process's end: stop the net.Socket Node made of it, then open the descriptor as a lane (the supervisor
  // instead passes it to the old worker, which receives a wrapper that never read).
  const end = child.stdio[4] as net.Socket & { _handle: { readStop(): number } };
  end.pause();
  end._handle.readStop();
  const lane = new HandleLane<{ port: number; pad: string } | { end: true }>(HandleLane.fdOf(end._handle), end._handle);
  let failed: Error | undefined;
  lane.onError = (err) => (failed = err);
  for (const [i, s] of accepted.entries()) {
    const h = (s as unknown as { _handle: object })._handle;
    // Every 25th frame is larger than one 64 KiB read: the next descriptor arrives before that frame completes.
    lane.send({ port: s.remotePort!, pad: 'x'.repeat(i % 25 === 0 ? 70_000 + i : (i * 37) % 3000) }, h);
  }
  lane.send({ end: true });
  const report = await next();
  lane.close();
  assert.equal(failed, undefined);
  assert.deepEqual(report, { received: N, mismatched: 0, missing: 0 });
});
