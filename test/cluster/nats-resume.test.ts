import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connect } from '../../src/client/index.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { TestNatsServer } from '../helpers/nats-server.js';
import { ExactnessChecker, NumberedPump, streamPlugin } from '../session/fixtures.js';

const NODE_SCRIPT = fileURLToPath(new URL('./nats-host-process.ts', import.meta.url));

function startNode(plugin: string, nats: string, bucket: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', NODE_SCRIPT, plugin, nats, bucket], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /ready (\d+)/.exec(out);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.once('exit', (code) => reject(new Error(`node exited with ${code} before ready: ${out}`)));
  });
}

function kill9(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

test('node A killed -9 mid-stream: its session clients resume on node B from the NATS bucket, every message once and in order, conn.state carried', { timeout: 60_000 }, async () => {
  const nats = await new TestNatsServer().start();
  const p = pluginDir(streamPlugin(10));
  const a = await startNode(p.entry, nats.url, 'resume');
  const b = await startNode(p.entry, nats.url, 'resume');
  // The address is read at each attempt: after the kill, the load balancer (this variable) sends clients to B.
  let port = a.port;
  const clients = Array.from({ length: 3 }, () => connect(() => `ws://127.0.0.1:${port}/`, { backoff: { initialDelay: 50, maxDelay: 300 } }));
  const checks = clients.map((c) => new ExactnessChecker(c));
  const pump = new NumberedPump(clients);
  try {
    await Promise.all(checks.map((ch) => ch.until(() => ch.replies >= 50 && ch.ticks >= 20, 'traffic on node A')));
    await kill9(a.child);
    port = b.port;
    await Promise.all(checks.map((ch) => ch.until(() => ch.resumes >= 1, 'resumed on node B')));
    const floor = checks.map((ch) => ch.replies + 30);
    await Promise.all(checks.map((ch, i) => ch.until(() => ch.replies >= floor[i]!, 'traffic on node B')));
    await pump.drain(checks);
    for (const [i, ch] of checks.entries()) {
      assert.deepEqual(ch.errors, [], `client ${i}: nothing lost, duplicated or reordered, either way (the plugin checks client seqs in conn.state)`);
      assert.deepEqual(ch.lost, [], `client ${i}: the session itself was not lost`);
      assert.equal(ch.resumes, 1, `client ${i}: resumed exactly once`);
      assert.equal(ch.replies, pump.sent[i]);
    }
  } finally {
    await pump.stop();
    for (const c of clients) c.close();
    await kill9(a.child);
    await kill9(b.child);
    p.remove();
    await nats.stop();
  }
});
