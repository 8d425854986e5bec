/**
 * Rooms through a real process upgrade (issue 13): membership is host state, so it moves with each connection (the
 * transfer's tag 3) to the new worker. A real supervisor and worker processes; WebSocket and TCP members; a member
 * sending to the room all through the upgrade. After it: the same rooms per connection, the same members per room,
 * and every room message delivered to every member once, in order.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { adminRequest } from '../../src/admin/admin-client.js';
import type { UpgradeSummary } from '../../src/handoff/upgrade.js';
import { type TcpClient, type WsClient, tcpClient, wsClient } from '../helpers/clients.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { roomPlugin } from '../rooms/room-plugin.js';
import { startSupervisor } from './supervisor-process.js';

type Client = WsClient | TcpClient;

test('a process upgrade carries every connection rooms; room traffic through it arrives once, in order', { timeout: 120_000 }, async () => {
  const p = pluginDir(roomPlugin('v1'), { 'worker.env': '' });
  const admin = path.join(p.dir, 'admin.sock');
  const sup = await startSupervisor({ entry: p.entry, admin, envFile: path.join(p.dir, 'worker.env'), readyTimeoutMs: 30_000 });
  const clients: Client[] = [];
  const ask = async (c: Client, msg: string) => {
    const n = c.inbox.messages.length;
    c.send(msg);
    await c.inbox.waitFor(n + 1);
    return c.inbox.messages[n]!;
  };
  try {
    const [wsPort, tcpPort] = sup.addresses.map((a) => a.port);
    for (let i = 0; i < 3; i++) clients.push(await wsClient(`ws://127.0.0.1:${wsPort}/`));
    clients.push(await tcpClient(tcpPort!));
    const [a, b, c, t] = clients as [WsClient, WsClient, WsClient, TcpClient];
    for (const x of [a, b, t]) assert.equal(await ask(x, 'join:lobby'), 'joined:true');
    assert.equal(await ask(a, 'join:game'), 'joined:true');
    assert.equal(await ask(c, 'join:ü-raum'), 'joined:true');
    const membersBefore = await ask(c, 'members:lobby');
    const marks = clients.map((x) => x.inbox.messages.length);

    // c talks to the lobby (it is not in it) all through the upgrade: a, b and t must get every message once.
    let sent = 0;
    let done = false;
    const upgrading = (adminRequest(admin, 'upgrade', 60_000) as Promise<UpgradeSummary>).finally(() => (done = true));
    while (!done || sent < 50) {
      c.send(`say:lobby:${sent++}`);
      await new Promise((r) => setTimeout(r, 2));
    }
    const summary = await upgrading;
    assert.equal(summary.outcome, 'committed', JSON.stringify(summary));
    assert.equal(summary.moved, clients.length);
    await Promise.all([a, b, t].map((x, i) => x.inbox.waitFor(marks[[0, 1, 3][i]!]! + sent, 30_000)));
    for (const [i, x] of [a, b, t].entries()) {
      const got = x.inbox.messages.slice(marks[[0, 1, 3][i]!]).map((m) => Number(m.split('|')[1]));
      assert.deepEqual(got, Array.from({ length: sent }, (_, k) => k), 'every room message once, in order');
    }
    assert.equal(c.inbox.messages.length, marks[2], 'c, not in the lobby, got none');

    assert.equal(await ask(a, 'rooms'), 'rooms:["lobby","game"]');
    assert.equal(await ask(t, 'rooms'), 'rooms:["lobby"]');
    assert.equal(await ask(c, 'rooms'), 'rooms:["ü-raum"]');
    assert.equal(await ask(c, 'members:lobby'), membersBefore, 'the same members (ids travel too)');
    assert.equal(await ask(b, 'sayx:game:x'), 'sent:1');
  } finally {
    for (const x of clients) {
      if ('ws' in x) x.ws.terminate();
      else x.socket.destroy();
    }
    sup.child.kill('SIGTERM');
    await sup.exited;
    p.remove();
  }
});
