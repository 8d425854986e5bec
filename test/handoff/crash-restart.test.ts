/**
 * A crashed worker (not an upgrade) under `hotline start`: the supervisor restarts it with backoff (100 ms doubling),
 * its PID never changes, the listener stays bound the whole time, so a client that connects while no worker runs is
 * served by the next one. The crashed worker's own connections are lost (clients reconnect; sessions cover resume).
 * Real bin, real processes, real sockets.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { adminStatus, HotlineProcess, runHotline } from '../e2e/hotline-process.js';
import { wsClient } from '../helpers/clients.js';
import { counterPlugin, pluginDir } from '../helpers/plugin-dir.js';

interface Status {
  pid: number;
  supervisor: { pid: number; workerPid: number; restarts: number; restartDelayMs?: number };
}

/** Poll status until the supervisor reports `restarts` and a worker that answers; bounded. */
async function restarted(admin: string, cwd: string, restarts: number): Promise<Status> {
  for (let i = 0; i < 300; i++) {
    const r = await runHotline(['status', '--admin', admin, '--json'], cwd);
    if (r.code === 0) {
      const s = JSON.parse(r.stdout) as Status;
      if (s.supervisor.restarts === restarts) return s;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`the supervisor never reported ${restarts} restarts`);
}

test('a crashed worker is restarted with doubling backoff; the supervisor and its listener stay', { timeout: 90_000 }, async () => {
  const p = pluginDir(counterPlugin('v1'));
  const admin = path.join(p.dir, 'admin.sock');
  const { proc, ready } = await HotlineProcess.start(['start', p.entry, '--port', '0', '--admin', admin], p.dir);
  try {
    const first = await adminStatus<Status>(admin, p.dir);
    assert.equal(first.supervisor.restarts, 0);
    assert.equal(first.supervisor.pid, proc.child.pid);

    const delays: number[] = [];
    let workerPid = first.supervisor.workerPid;
    for (let crash = 1; crash <= 3; crash++) {
      const client = await wsClient(ready.url);
      client.send('hello');
      assert.match(await client.inbox.next(), /^v1:1:\d+\|hello$/);

      process.kill(workerPid, 'SIGKILL');
      const lost = await client.closed;
      assert.equal(lost.code, 1006, 'the crashed worker’s connection is lost, not closed cleanly');

      // Connect while the worker may still be down: the supervisor keeps the listener, so the kernel queues it.
      const early = wsClient(ready.url);
      const s = await restarted(admin, p.dir, crash);
      assert.notEqual(s.supervisor.workerPid, workerPid, 'a new worker');
      assert.equal(s.supervisor.pid, proc.child.pid, 'the same supervisor');
      delays.push(s.supervisor.restartDelayMs!);
      workerPid = s.supervisor.workerPid;

      const queued = await early;
      queued.send('queued');
      assert.match(await queued.inbox.next(), /^v1:1:\d+\|queued$/);
      queued.ws.close();
    }
    // Each worker lived well under the 10 s reset, so each wait doubled.
    assert.deepEqual(delays, [100, 200, 400]);

    const text = await runHotline(['status', '--admin', admin], p.dir);
    assert.match(text.stdout, /^supervisor {2}pid \d+, running, 3 restarts \(the latest after 400 ms of backoff\)/m);
  } finally {
    proc.child.kill('SIGTERM');
    await proc.exited;
    p.remove();
  }
});
