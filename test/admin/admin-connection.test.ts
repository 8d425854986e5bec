/**
 * The admin socket's per-connection bounds (issue 9, item 2): a client that pipelines 100,000 requests and reads
 * nothing gets paused (TCP backpressure) instead of growing a promise chain and a write buffer in the host; once it
 * reads, every request is answered, in order. Real AdminServer, real Unix socket; the handler is a counter.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { AdminServer } from '../../src/admin/admin-server.js';

const N = 100_000;

test('100k pipelined requests from a client that does not read are held back, then all answered in order', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'hotline-admin-'));
  let handled = 0;
  const server = new AdminServer(path.join(dir, 'a.sock'), async () => ({ n: ++handled }));
  await server.start();
  try {
    const socket = net.connect(server.path);
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.pause(); // read nothing yet
    let body = '';
    for (let i = 1; i <= N; i++) body += `{"id":${i},"cmd":"status"}\n`;
    socket.write(body);
    // Let the server work until it stops making progress: it must stop well short of N.
    let last = -1;
    for (let i = 0; i < 200 && handled !== last; i++) {
      last = handled;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(handled < N / 2, `the server stopped answering a client that does not read (answered ${handled} of ${N})`);

    let buf = '';
    let answered = 0;
    let inOrder = true;
    socket.setEncoding('utf8');
    const done = new Promise<void>((resolve) => {
      socket.on('data', (c: string) => {
        buf += c;
        let nl: number;
        while ((nl = buf.indexOf('\n')) !== -1) {
          const r = JSON.parse(buf.slice(0, nl)) as { id: number; ok: boolean };
          buf = buf.slice(nl + 1);
          answered++;
          if (r.id !== answered || !r.ok) inOrder = false;
          if (answered === N) resolve();
        }
      });
    });
    socket.resume();
    await done;
    assert.equal(answered, N);
    assert.ok(inOrder, 'answers come in request order');
    assert.equal(handled, N);
    socket.destroy();
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
