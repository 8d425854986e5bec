/**
 * The startup self-check of the Node and ws internals (src/internals/self-check.ts, issue 10): it passes on this
 * machine, and a Node major, a ws version or an object it does not know fails with HOTLINE_E_INTERNALS naming what.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isHotlineError } from '../../src/errors.js';
import { type InternalsProbe, checkInternals, findMissing, systemProbe } from '../../src/internals/self-check.js';

function refusedWith(probe: InternalsProbe, ...names: string[]): void {
  assert.throws(
    () => checkInternals(probe),
    (err: unknown) => {
      assert.ok(isHotlineError(err, 'HOTLINE_E_INTERNALS'), `expected HOTLINE_E_INTERNALS, got ${String(err)}`);
      for (const n of names) assert.ok(err.message.includes(n), `the message names ${n}: ${err.message}`);
      return true;
    },
  );
}

/** A real object of the probe with one field deleted. */
function without<T extends object>(make: () => T, field: string): () => T {
  return () => {
    const o = make();
    delete (o as Record<string, unknown>)[field];
    return o;
  };
}

test('the internals of this Node and the installed ws are all there', () => {
  assert.deepEqual(findMissing(systemProbe()), []);
  checkInternals();
  checkInternals(systemProbe());
});

test('the check is cheap: a fresh probe well under a millisecond on average', () => {
  // Warm once (module loading of ws/package.json), then time fresh probes: what a process pays is the first call.
  checkInternals(systemProbe());
  const n = 200;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) checkInternals(systemProbe());
  const perCallMs = Number(process.hrtime.bigint() - t0) / 1e6 / n;
  console.log(`checkInternals: ${perCallMs.toFixed(3)} ms per fresh probe`);
  // Not an absolute timing gate (the machine is shared): only a gross regression, 100x the budget, fails.
  assert.ok(perCallMs < 100, `${perCallMs} ms`);
});

test('a ws Receiver missing a field it reads is refused by name', () => {
  const real = systemProbe();
  refusedWith({ ...real, receiver: without(real.receiver, '_fragments') }, 'ws Receiver._fragments');
  refusedWith({ ...real, receiver: without(real.receiver, '_bufferedBytes') }, 'ws Receiver._bufferedBytes');
});

test('a ws WebSocket without _receiver or setSocket is refused by name', () => {
  const real = systemProbe();
  refusedWith({ ...real, webSocket: without(real.webSocket, '_receiver') }, 'ws WebSocket._receiver');
  refusedWith({ ...real, webSocket: () => ({ ...real.webSocket(), setSocket: undefined }) }, 'ws WebSocket.setSocket()');
});

test('a Node without a socket _handle, _createServerHandle or the pipe binding is refused by name', () => {
  const real = systemProbe();
  refusedWith({ ...real, socket: () => ({}) }, 'net.Socket._handle');
  refusedWith({ ...real, net: {} }, 'net._createServerHandle()');
  refusedWith(
    {
      ...real,
      pipeWrap: () => {
        throw new Error('No such module: pipe_wrap');
      },
    },
    "process.binding('pipe_wrap')",
    'No such module',
  );
  refusedWith({ ...real, streamWrap: () => ({}) }, 'stream_wrap WriteWrap', 'stream_wrap kLastWriteWasAsync');
});

test('an unknown Node major or ws version is refused by name', () => {
  const real = systemProbe();
  refusedWith({ ...real, nodeVersion: '18.20.0' }, 'Node major 18');
  refusedWith({ ...real, nodeVersion: '99.0.0' }, 'Node major 99');
  refusedWith({ ...real, wsVersion: () => '8.19.0' }, 'ws 8.19.0 is not 8.18.3');
});
