/**
 * Durable global state end to end (issue 11): the chat example under `hotline start --sessions`, a kill -9 of its
 * worker, and the supervisor's restart. Before checkpoints the restarted worker began from init(): the history was
 * gone and nicknames restarted at guest-1. The real bin, real processes, real files.
 */
import assert from 'node:assert/strict';
import { cpSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Line } from '../../examples/chat/plugin.js';
import { CHECKPOINT_FILE, decodeCheckpoint } from '../../src/state/checkpoint-file.js';
import { adminStatus, HotlineProcess, runHotline } from '../e2e/hotline-process.js';
import { type WsClient, wsClient } from '../helpers/clients.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { until } from '../helpers/until.js';

const EXAMPLE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../examples/chat');

interface Hello {
  type: 'hello';
  you: string;
  history: Line[];
}

/** A new connection's first message. */
async function hello(c: WsClient): Promise<Hello> {
  await c.inbox.waitFor(1, 15_000);
  const m = JSON.parse(c.inbox.messages[0]!) as Hello;
  assert.equal(m.type, 'hello');
  return m;
}

function checkpointHas(stateDir: string, text: string): boolean {
  try {
    const { state } = decodeCheckpoint(readFileSync(path.join(stateDir, CHECKPOINT_FILE)), 1 << 24);
    return (state as { history: Line[] }).history.some((l) => l.text.includes(text));
  } catch {
    return false;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('chat under start --sessions: after a kill -9 of the worker, the restarted worker has the history and the nickname counter', { timeout: 60_000 }, async () => {
  const p = pluginDir(readFileSync(path.join(EXAMPLE, 'plugin.ts'), 'utf8'));
  cpSync(path.join(EXAMPLE, 'format.ts'), path.join(p.dir, 'format.ts'));
  const admin = path.join(p.dir, 'admin.sock');
  const stateDir = path.join(p.dir, 'state');
  const { proc, ready } = await HotlineProcess.start(['start', p.entry, '--port', '0', '--admin', admin, '--sessions', '--state-interval', '100'], p.dir);
  const clients: WsClient[] = [];
  try {
    const alice = await wsClient(ready.url);
    clients.push(alice);
    assert.equal((await hello(alice)).you, 'guest-1');
    alice.send(JSON.stringify({ type: 'nick', nick: 'alice' }));
    alice.send(JSON.stringify({ type: 'say', text: 'said before the kill' }));
    const bob = await wsClient(ready.url);
    clients.push(bob);
    assert.equal((await hello(bob)).you, 'guest-2');
    await until(() => checkpointHas(stateDir, 'said before the kill'), 'the line checkpointed', 15_000);

    const { supervisor } = await adminStatus<{ supervisor: { workerPid: number } }>(admin, p.dir);
    process.kill(supervisor.workerPid, 'SIGKILL');
    await Promise.all(clients.map((c) => c.closed));

    // The supervisor keeps the listening socket: this connect waits in its backlog until the new worker accepts.
    const carol = await wsClient(ready.url);
    clients.push(carol);
    const back = await hello(carol);
    assert.equal(back.you, 'guest-3', 'the nickname counter survived');
    const said = back.history.find((l) => l.text === 'said before the kill');
    assert.equal(said?.nick, 'alice', 'the history survived, with its authors');
    assert.ok(back.history.some((l) => l.text === 'guest-1 is now alice'));

    const after = await adminStatus<{ supervisor: { workerPid: number; restarts: number }; checkpoint: { restore?: { version?: string } } }>(admin, p.dir);
    assert.notEqual(after.supervisor.workerPid, supervisor.workerPid);
    assert.equal(after.checkpoint.restore?.version, '1.0.0');
    const text = await runHotline(['status', '--admin', admin], p.dir);
    assert.match(text.stdout, /^checkpoint {2}.*started from the checkpoint of 1\.0\.0$/m);
    // The chat says so once the restored version serves.
    await until(() => carol.inbox.messages.some((m) => m.includes('restored from the checkpoint')), 'the restore notice', 15_000);

    // A process upgrade: the new worker checkpoints once it committed, and the old one writes nothing after it.
    carol.send(JSON.stringify({ type: 'say', text: 'said before the upgrade' }));
    const up = await runHotline(['upgrade', '--admin', admin, '--json'], p.dir);
    assert.equal((JSON.parse(up.stdout) as { outcome: string }).outcome, 'committed', up.stderr);
    const upgraded = await adminStatus<{ checkpoint: { phase: string; writes: number } }>(admin, p.dir);
    assert.equal(upgraded.checkpoint.phase, 'active');
    assert.ok(upgraded.checkpoint.writes >= 1, 'the new worker checkpointed at its commit');
    // Only the new worker's state has its own update notice: the old worker wrote nothing over it.
    await until(() => checkpointHas(stateDir, 'server updated live'), 'the new worker’s state on disk', 15_000);
    await until(() => !alive(after.supervisor.workerPid), 'the old worker gone', 15_000);
    assert.ok(checkpointHas(stateDir, 'server updated live'), 'still the new worker’s state once the old one exited');
    assert.ok(checkpointHas(stateDir, 'said before the upgrade') && checkpointHas(stateDir, 'said before the kill'));
  } finally {
    for (const c of clients) c.ws.terminate();
    proc.kill('SIGTERM');
    await proc.exited;
    p.remove();
  }
});
