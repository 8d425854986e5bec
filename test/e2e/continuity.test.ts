/**
 * The headline proof of issue 2: real clients keep sending numbered messages while the plugin is swapped again and
 * again, and every client gets every reply exactly once, in order, with state continuous across versions and no
 * connection closed. Once in-process (file edits through the watcher plus host.reload()), and against a spawned
 * `hotline start` (SIGHUP plus `hotline reload`) over WebSocket and over TCP.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import { createHost } from '../../src/index.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { switchedTo } from '../helpers/host-events.js';
import { quietLogger } from '../helpers/quiet-logger.js';
import { HotlineProcess, runHotline } from './hotline-process.js';
import { continuityLabel, continuityPlugin, NumberedTraffic, type TrafficCounts } from './numbered-traffic.js';

/** Every failure count must be zero, and the global counter must have counted every message exactly once. */
function assertExact(c: TrafficCounts): void {
  const failures = {
    lost: c.lost,
    duplicated: c.duplicated,
    reordered: c.reordered,
    closed: c.closed,
    connStateBreaks: c.connStateBreaks,
    globalStateBreaks: c.globalStateBreaks,
    generationRegressions: c.generationRegressions,
    malformed: c.malformed,
  };
  assert.deepEqual(failures, {
    lost: 0,
    duplicated: 0,
    reordered: 0,
    closed: 0,
    connStateBreaks: 0,
    globalStateBreaks: 0,
    generationRegressions: 0,
    malformed: 0,
  });
  assert.equal(c.received, c.sent);
  assert.equal(c.maxTotal, c.sent, 'the global counter (carried by migrate) counted every message once');
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Median and p90 of totalMs and of each phase, over switched swaps. */
function phaseSummary(records: Array<{ totalMs: number; durations: Partial<Record<string, number>> }>): string {
  const keys = ['totalMs', 'building', 'loading', 'preparing', 'suspending', 'migrating', 'switching', 'disposing'] as const;
  return keys
    .map((k) => {
      const xs = records
        .map((r) => (k === 'totalMs' ? r.totalMs : r.durations[k]))
        .filter((x): x is number => typeof x === 'number')
        .sort((a, b) => a - b);
      return `${k} median ${quantile(xs, 0.5)} p90 ${quantile(xs, 0.9)}`;
    })
    .join('; ');
}


test('200 WS + 50 TCP clients: 20 swaps (file edits and reload) lose, duplicate, reorder and close nothing', async (t: TestContext) => {
  const p = pluginDir(continuityPlugin(0));
  const host = await createHost({
    plugin: p.entry,
    listen: [{ transport: 'ws' }, { transport: 'tcp', framing: 'lines' }],
    watch: true,
    logger: quietLogger,
  });
  const traffic = new NumberedTraffic({ window: 4, maxPerClient: 5_000 });
  try {
    const [wsAddr, tcpAddr] = host.addresses();
    await traffic.addWs(wsAddr!.url, 200);
    await traffic.addTcp(tcpAddr!.port, 50);
    traffic.start();
    await traffic.progress(500, 30_000);

    let gen = 0;
    for (let i = 0; i < 20; i++) {
      if (i % 2 === 0) {
        // A watched edit: the new generation must be what answers next.
        gen++;
        const swapped = switchedTo(host, continuityLabel(gen), 15_000);
        p.write(continuityPlugin(gen));
        await swapped;
      } else {
        const record = await host.reload();
        assert.equal(record.outcome, 'switched');
      }
      // Traffic must flow through every version, so each swap meets messages in flight.
      await traffic.progress(250, 30_000);
    }
    traffic.stop();
    await traffic.drained(30_000);

    const counts = traffic.counts();
    const status = host.status();
    const swaps = status.swaps.filter((r) => r.trigger !== 'start');
    const switched = swaps.filter((r) => r.outcome === 'switched');
    t.diagnostic(`counts ${JSON.stringify(counts)}`);
    t.diagnostic(`swaps ${switched.length} switched (${swaps.filter((r) => r.trigger === 'watch').length} watch, ${swaps.filter((r) => r.trigger === 'reload').length} reload), ${swaps.length - switched.length} aborted`);
    t.diagnostic(`phases (ms) ${phaseSummary(switched)}`);

    assert.equal(counts.clients, 250);
    assertExact(counts);
    assert.equal(status.messages.in, counts.sent);
    assert.equal(status.connections, 250);
    assert.equal(counts.generations, gen + 1, 'every generation answered some traffic');
    assert.ok(switched.length >= 20, `${switched.length} swaps switched`);
    assert.equal(swaps.length - switched.length, 0, 'no swap aborted');
  } finally {
    traffic.closeAll();
    await host.close();
    p.remove();
  }
});

for (const transport of ['ws', 'tcp'] as const) {
  test(`spawned hotline start --transport ${transport}: SIGHUP and \`hotline reload\` swaps keep 50 clients exact`, async (t: TestContext) => {
    const p = pluginDir(continuityPlugin(0));
    const admin = path.join(p.dir, 'admin.sock');
    const { proc, ready } = await HotlineProcess.start(['start', p.entry, '--transport', transport, '--port', '0', '--admin', admin], p.dir);
    const traffic = new NumberedTraffic({ window: 4, maxPerClient: 20_000 });
    try {
      assert.equal(ready.label, continuityLabel(0));
      const url = new URL(ready.url);
      assert.equal(url.protocol, `${transport}:`);
      if (transport === 'ws') await traffic.addWs(ready.url, 50);
      else await traffic.addTcp(Number(url.port), 50);
      traffic.start();
      await traffic.progress(200, 30_000);

      let signals = 0;
      let reloads = 0;
      for (let gen = 1; gen <= 6; gen++) {
        p.write(continuityPlugin(gen));
        if (gen % 3 !== 0) {
          const from = proc.logs.length;
          proc.kill('SIGHUP');
          const log = await proc.waitForSwap(continuityLabel(gen), from);
          assert.equal(log.swap?.trigger, 'signal');
          signals++;
        } else {
          const r = await runHotline(['reload', '--admin', admin], p.dir);
          assert.equal(r.code, 0, r.stderr);
          assert.match(r.stdout, new RegExp(`now serving ${continuityLabel(gen)}`));
          reloads++;
        }
        await traffic.progress(100, 30_000);
      }
      traffic.stop();
      await traffic.drained(30_000);
      const counts = traffic.counts();
      t.diagnostic(`counts ${JSON.stringify(counts)}; swaps: ${signals} SIGHUP, ${reloads} hotline reload`);
      const swapped = proc.logs.flatMap((l) => (l.swap && l.swap.outcome === 'switched' && l.swap.trigger !== 'start' ? [l.swap] : []));
      t.diagnostic(`phases (ms) ${phaseSummary(swapped)}`);
      assertExact(counts);
      assert.equal(counts.generations, 7);

      // Graceful shutdown: WS clients are told to come back (1012), TCP streams end cleanly, exit code 0.
      traffic.expectClose();
      proc.kill('SIGTERM');
      const exit = await proc.exited;
      await traffic.allEnded(10_000);
      assert.deepEqual(exit, { code: 0, signal: null });
      const expected = transport === 'ws' ? 1012 : 'end';
      assert.deepEqual(new Set(traffic.endings), new Set([expected]));
    } finally {
      traffic.closeAll();
      proc.kill('SIGKILL');
      await proc.exited;
      p.remove();
    }
  });
}
