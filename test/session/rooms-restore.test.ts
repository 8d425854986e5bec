/**
 * issue 13: a session restored from the file store after its host was killed -9 comes back in the rooms it was in,
 * before its first message: a room send from another client reaches it, `ctx.rooms(conn)` lists them, and
 * `ctx.members` has it. Twice, so the second restore reads the log the first open compacted.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connect, type HotlineClient } from '../../src/client/index.js';
import { wsClient } from '../helpers/clients.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { until } from '../helpers/until.js';
import { roomPlugin } from '../rooms/room-plugin.js';

const HOST_SCRIPT = fileURLToPath(new URL('./host-process.ts', import.meta.url));

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
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/** What a session client received, and a way to wait for a message that starts with `prefix`. */
class Received {
  readonly all: string[] = [];
  constructor(client: HotlineClient) {
    client.on('message', (d) => this.all.push(String(d)));
  }

  async next(prefix: string, what: string, timeoutMs = 20_000): Promise<string> {
    const from = this.all.length;
    let hit: string | undefined;
    await until(() => (hit = this.all.slice(from).find((m) => m.startsWith(prefix))) !== undefined, what, timeoutMs);
    return hit!;
  }
}

/** Send `cmd` on a session client and wait for the reply starting with `prefix`. */
async function ask(client: HotlineClient, got: Received, cmd: string, prefix: string): Promise<string> {
  const reply = got.next(prefix, `the reply to ${cmd}`);
  client.send(cmd);
  return reply;
}

test('killed -9 twice: the restored session is in its rooms again before its first message, and a room send reaches it', { timeout: 60_000 }, async () => {
  const p = pluginDir(roomPlugin('v1'));
  const dir = mkdtempSync(path.join(tmpdir(), 'hotline-session-rooms-'));
  let { child, port } = await startHost(p.entry, dir, 0);
  const client = connect(() => `ws://127.0.0.1:${port}/`, { backoff: { initialDelay: 50, maxDelay: 300 } });
  const got = new Received(client);
  let resumed = 0;
  const lost: string[] = [];
  client.on('resumed', () => resumed++);
  client.on('lost-session', (info) => lost.push(info.code));
  try {
    const id = (await ask(client, got, 'id', 'id:')).slice(3);
    for (const room of ['lobby', 'game', 'tmp', 'zone é']) assert.equal(await ask(client, got, `join:${room}`, 'joined:'), 'joined:true');
    assert.equal(await ask(client, got, 'leave:tmp', 'left:'), 'left:true', 'a leave is stored too');
    for (let round = 0; round < 2; round++) {
      await kill9(child);
      ({ child, port } = await startHost(p.entry, dir, port).catch(() => startHost(p.entry, dir, 0)));
      await until(() => resumed === round + 1, `resume ${round + 1}`, 20_000);
      // Another client, on the new process, talks to the rooms before the session client has sent anything.
      const other = await wsClient(`ws://127.0.0.1:${port}/`);
      try {
        other.send('id');
        const otherId = (await other.inbox.next()).slice(3);
        other.send('join:lobby');
        assert.equal(await other.inbox.next(), 'joined:true');
        other.send('members:lobby');
        assert.equal(await other.inbox.next(), 'members:' + JSON.stringify([id, otherId].sort()), 'ctx.members lists the restored connection');
        const heard = got.next('v1|', 'the room send to the restored session');
        other.send(`say:lobby:hello ${round}`);
        assert.equal(await heard, `v1|hello ${round}`, 'a room send reaches the restored session');
        await other.inbox.waitFor(4);
        assert.equal(other.inbox.messages[3], `v1|hello ${round}`, 'and the sender, a member too');
        assert.equal(await ask(client, got, 'rooms', 'rooms:'), 'rooms:' + JSON.stringify(['lobby', 'game', 'zone é']), 'ctx.rooms lists them, in join order');
        assert.equal(await ask(client, got, 'join:game', 'joined:'), 'joined:false', 'in it already');
        assert.equal(await ask(client, got, 'id', 'id:'), 'id:' + id, 'the same connection id');
      } finally {
        other.ws.terminate();
      }
    }
  } finally {
    client.close();
    await kill9(child);
    rmSync(dir, { recursive: true, force: true });
    p.remove();
  }
  assert.deepEqual(lost, []);
});

test('rooms in the file store that joins could not have made: the record is refused whole, the client starts over in no room', { timeout: 60_000 }, async () => {
  const p = pluginDir(roomPlugin('v1'));
  const dir = mkdtempSync(path.join(tmpdir(), 'hotline-session-rooms-'));
  let { child, port } = await startHost(p.entry, dir, 0);
  const client = connect(() => `ws://127.0.0.1:${port}/`, { backoff: { initialDelay: 50, maxDelay: 300 } });
  const got = new Received(client);
  let resumed = 0;
  const lost: string[] = [];
  client.on('resumed', () => resumed++);
  client.on('lost-session', (info) => lost.push(info.code));
  try {
    assert.equal(await ask(client, got, 'join:lobby', 'joined:'), 'joined:true');
    await kill9(child);
    const log = path.join(dir, 'sessions.log');
    const ids = new Set(readFileSync(log, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { i: string }).i));
    assert.equal(ids.size, 1);
    // A good room and a bad one: nothing of it may be joined.
    appendFileSync(log, JSON.stringify({ i: [...ids][0], c: { rooms: ['lobby', 'x'.repeat(300)], touchedAt: Date.now() } }) + '\n');
    ({ child, port } = await startHost(p.entry, dir, port).catch(() => startHost(p.entry, dir, 0)));
    await until(() => lost.length > 0, 'the lost-session', 20_000);
    assert.deepEqual(lost, ['HOTLINE_E_SESSION_UNKNOWN']);
    assert.equal(resumed, 0);
    assert.equal(await ask(client, got, 'rooms', 'rooms:'), 'rooms:[]', 'the new session is in no room');
  } finally {
    client.close();
    await kill9(child);
    rmSync(dir, { recursive: true, force: true });
    p.remove();
  }
});
