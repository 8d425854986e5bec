/**
 * Issue 14: under `hotline start` the worker holds the NATS connection, so the supervisor's /readyz reads the
 * dependency from the serving worker's metric families (hotline_nats_up). A real HTTP listener, the worker faked:
 * its families are what worker-metrics.ts would return.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveHttpAdmin } from '../../src/ops/http-admin-options.js';
import { SupervisorOps } from '../../src/ops/supervisor-ops.js';

const natsUp = (value: number) => [{ name: 'hotline_nats_up', help: '', type: 'gauge', values: [{ labels: {}, value }] }];

test("the supervisor's /readyz says degraded when the worker reports NATS down, ready when up, and nothing of NATS without a worker", async () => {
  let families: unknown = natsUp(0);
  let alive = true;
  const ops = new SupervisorOps(resolveHttpAdmin('127.0.0.1:0')!, {
    command: () => Promise.resolve({}),
    readiness: () => (alive ? 'ready' : 'starting'),
    workerFamilies: () => Promise.resolve(alive ? { pid: 1, families } : undefined),
  });
  await ops.start();
  const readyz = async () => {
    const res = await fetch(`http://127.0.0.1:${ops.address.port}/readyz`);
    return { status: res.status, body: (await res.json()) as unknown };
  };
  try {
    assert.deepEqual(await readyz(), { status: 200, body: { ready: true, state: 'degraded', degraded: ['nats'], dependencies: { nats: false } } });
    families = natsUp(1);
    assert.deepEqual(await readyz(), { status: 200, body: { ready: true, state: 'ready', dependencies: { nats: true } } });
    // A worker whose families are garbage reports no dependency, and the answer is still well-formed.
    families = [{ name: 'hotline_nats_up', values: 'x' }, null, 7];
    assert.deepEqual(await readyz(), { status: 200, body: { ready: true, state: 'ready', dependencies: {} } });
    alive = false;
    assert.deepEqual(await readyz(), { status: 503, body: { ready: false, state: 'starting', dependencies: {} } });
  } finally {
    await ops.close();
  }
});
