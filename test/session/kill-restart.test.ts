import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connect } from '../../src/client/index.js';
import { wsClient } from '../helpers/clients.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { ExactnessChecker, NumberedPump, streamPlugin } from './fixtures.js';

const HOST_SCRIPT = fileURLToPath(new URL('./host-process.ts', import.meta.url));

/** Start a host process on `port` (0 = any) and resolve with it and its port once it prints ready. */
function startHost(plugin: string, dir: string, port: number): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', HOST_SCRIPT, plugin, dir, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /ready (\d+)/.exec(out);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.once('exit', (code) => reject(new Error(`host exited with ${code} before ready: ${out}`)));
  });
}

function kill9(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

test('streaming both ways while the host is killed -9 and restarted 5 times: every message exactly once, in order', { timeout: 120_000 }, async () => {
  const p = pluginDir(streamPlugin(10));
  const dir = mkdtempSync(path.join(tmpdir(), 'hotline-sessions-'));
  let { child, port } = await startHost(p.entry, dir, 0);
  // The url is read at each attempt, so clients follow the host to a new port if the old one is taken.
  const clients = Array.from({ length: 3 }, () => connect(() => `ws://127.0.0.1:${port}/`, { backoff: { initialDelay: 50, maxDelay: 500 } }));
  const checks = clients.map((c) => new ExactnessChecker(c));
  const pump = new NumberedPump(clients);
  try {
    for (let round = 0; round < 5; round++) {
      const floor = checks.map((ch) => ch.replies + 30);
      await Promise.all(checks.map((ch, i) => ch.until(() => ch.replies >= floor[i]! && ch.ticks > 0, `replies before kill ${round}`, 30_000)));
      await kill9(child);
      ({ child, port } = await startHost(p.entry, dir, port).catch(() => startHost(p.entry, dir, 0)));
    }
    await Promise.all(checks.map((ch) => ch.until(() => ch.resumes >= 5, 'five resumes', 30_000)));
    await pump.drain(checks);
    for (const [i, ch] of checks.entries()) {
      assert.deepEqual(ch.errors, [], `client ${i}`);
      assert.deepEqual(ch.lost, [], `client ${i}`);
      assert.equal(ch.replies, pump.sent[i]);
      assert.ok(ch.ticks > 10);
    }
  } finally {
    await pump.stop();
    for (const c of clients) c.close();
    await kill9(child);
    rmSync(dir, { recursive: true, force: true });
    p.remove();
  }
});

/** Replies `<conn.id>|<data>`. */
const ID_ECHO = `
import { definePlugin } from 'hotline';
export default definePlugin({ name: 'id-echo', version: '1', api: 1, onMessage(conn, data) { conn.send(conn.id + '|' + String(data)); } });
`;

test('a session keeps its conn.id when it resumes in the next process after kill -9; ids never repeat across processes', { timeout: 60_000 }, async () => {
  const p = pluginDir(ID_ECHO);
  const dirs = [mkdtempSync(path.join(tmpdir(), 'hotline-sessions-')), mkdtempSync(path.join(tmpdir(), 'hotline-sessions-'))];
  let { child, port } = await startHost(p.entry, dirs[0]!, 0);
  const other = await startHost(p.entry, dirs[1]!, 0);
  const client = connect(() => `ws://127.0.0.1:${port}/`, { backoff: { initialDelay: 50, maxDelay: 500 } });
  const replies: string[] = [];
  let resumed = 0;
  client.on('message', (d) => replies.push(String(d)));
  client.on('resumed', () => resumed++);
  const reply = async (n: number) => {
    for (let i = 0; i < 2000 && replies.length < n; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(replies.length >= n, `reply ${n}`);
    return replies[n - 1]!.split('|')[0]!;
  };
  const plainIds: string[] = [];
  const plainId = async (p2: number) => {
    const c = await wsClient(`ws://127.0.0.1:${p2}/`);
    c.send('x');
    plainIds.push((await c.inbox.next()).split('|')[0]!);
    c.ws.terminate();
  };
  try {
    client.send('a');
    const id = await reply(1);
    await plainId(port);
    await plainId(other.port);
    for (let round = 0; round < 2; round++) {
      await kill9(child);
      ({ child, port } = await startHost(p.entry, dirs[0]!, port).catch(() => startHost(p.entry, dirs[0]!, 0)));
      for (let i = 0; i < 2000 && resumed <= round; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(resumed, round + 1, 'the client resumed its session');
      client.send(`b${round}`);
      assert.equal(await reply(round + 2), id, 'the resumed session has the conn.id it had before the kill');
      await plainId(port);
    }
    const ids = [id, ...plainIds];
    assert.equal(new Set(ids).size, ids.length, `every id is unique: ${ids.join(' ')}`);
    const prefixes = new Set(plainIds.map((x) => x.split('-')[0]));
    assert.equal(prefixes.size, 4, 'each process draws its own prefix: two hosts side by side, and each restart');
  } finally {
    client.close();
    await kill9(child);
    await kill9(other.child);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    p.remove();
  }
});
