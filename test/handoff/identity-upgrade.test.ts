/**
 * What a process upgrade keeps besides the bytes: each connection's `conn.id` (plugins key global state by it,
 * docs/guide.md) and the message totals of status ("totals since start", docs/api.md). A real supervisor, real
 * worker processes, WebSocket and TCP clients sending while the upgrade runs. Before: the new worker numbered adopted
 * connections from its own counter (alice got bob's old id) and its counters started from zero.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { adminRequest } from '../../src/admin/admin-client.js';
import type { UpgradeSummary } from '../../src/handoff/upgrade.js';
import { type TcpClient, type WsClient, tcpClient, wsClient } from '../helpers/clients.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { startSupervisor } from './supervisor-process.js';

/**
 * Replies `<conn.id>|<data>`. The reply to `m2` waits until `flag` exists, so the upgrade's export finds a handler in
 * flight and the messages that arrive meanwhile travel queued inside their connection's transfer.
 */
const idEcho = (flag: string) => `
import { existsSync } from 'node:fs';
import { definePlugin } from 'hotline';
export default definePlugin({
  name: 'id-echo', version: '1', api: 1,
  async onMessage(conn, data) {
    for (let i = 0; i < 2000 && String(data) === 'm2' && !existsSync(${JSON.stringify(flag)}); i++) await new Promise((r) => setTimeout(r, 10));
    conn.send(conn.id + '|' + String(data));
  },
});
`;

interface Status {
  connections: number;
  messages: { in: number; out: number };
  supervisor: { workerPid: number };
}

test('conn.id and the message totals survive a real upgrade, with clients sending through it', { timeout: 120_000 }, async () => {
  const p = pluginDir('', { 'worker.env': '' });
  const flag = path.join(p.dir, 'release-m2');
  p.write(idEcho(flag));
  const admin = path.join(p.dir, 'admin.sock');
  // m2 is held until the upgrade's export has started, which on a loaded machine can take longer than the default
  // hangTimeout (2 s): an abandoned m2 would let m3 overtake it.
  const sup = await startSupervisor({ entry: p.entry, admin, envFile: path.join(p.dir, 'worker.env'), readyTimeoutMs: 30_000, tuning: { hangTimeout: 60_000 } });
  const clients: Array<WsClient | TcpClient> = [];
  const sent = new Map<WsClient | TcpClient, number>();
  const send = (c: WsClient | TcpClient) => {
    const n = (sent.get(c) ?? 0) + 1;
    sent.set(c, n);
    c.send(`m${n}`);
  };
  /** The ids each client's replies carry, in order; every reply must name the message it answers. */
  const idsOf = (c: WsClient | TcpClient) =>
    c.inbox.messages.map((m, i) => {
      const [id, data] = m.split('|');
      assert.equal(data, `m${i + 1}`, 'replies in order, none lost');
      return id!;
    });
  try {
    const [wsPort, tcpPort] = sup.addresses.map((a) => a.port);
    // Clients that came and went leave gaps: a worker that numbered adopted connections afresh gave the survivors
    // other connections' ids.
    for (let i = 0; i < 3; i++) {
      const gone = await wsClient(`ws://127.0.0.1:${wsPort}/`);
      gone.ws.close();
      await gone.closed;
    }
    for (let i = 0; i < 200 && ((await adminRequest(admin, 'status')) as Status).connections > 0; i++) await new Promise((r) => setTimeout(r, 10));
    for (let i = 0; i < 6; i++) clients.push(await wsClient(`ws://127.0.0.1:${wsPort}/`));
    for (let i = 0; i < 4; i++) clients.push(await tcpClient(tcpPort!));
    for (const c of clients) send(c);
    await Promise.all(clients.map((c) => c.inbox.waitFor(1)));
    const before = clients.map((c) => idsOf(c)[0]!);
    assert.equal(new Set(before).size, clients.length, 'ids are unique');
    for (const id of before) assert.match(id, /^[0-9a-v]{10}-[0-9a-z]+$/, 'a per-process prefix and a counter');
    const s0 = (await adminRequest(admin, 'status')) as Status;
    assert.deepEqual(s0.messages, { in: clients.length, out: clients.length, dropped: 0 });

    // m2 holds a handler in flight; what follows queues behind it and moves with its connection.
    for (const c of clients) send(c);
    const upgrading = adminRequest(admin, 'upgrade', 60_000) as Promise<UpgradeSummary>;
    let done = false;
    void upgrading.finally(() => (done = true));
    let released = false;
    for (let i = 0; i < 2000 && !done; i++) {
      for (const c of clients) send(c);
      if (released) {
        await new Promise((resolve) => setTimeout(resolve, 2));
        continue;
      }
      // Asked of the old worker, so only until the export starts: it exits at the commit.
      const s = (await adminRequest(admin, 'status')) as Status & { supervisor: { upgrade?: { phase: string } } };
      // The export has started and waits for the held handlers: let them finish.
      if (s.supervisor.upgrade?.phase === 'moving') {
        writeFileSync(flag, '');
        released = true;
      }
    }
    const summary = await upgrading;
    assert.equal(summary.outcome, 'committed', JSON.stringify(summary));
    assert.equal(summary.moved, clients.length);
    for (const c of clients) send(c);
    await Promise.all(clients.map((c) => c.inbox.waitFor(sent.get(c)!, 30_000)));

    for (const [i, c] of clients.entries()) {
      assert.deepEqual(new Set(idsOf(c)), new Set([before[i]]), `client ${i} kept its id through the upgrade`);
    }
    const s1 = (await adminRequest(admin, 'status')) as Status;
    assert.notEqual(s1.supervisor.workerPid, s0.supervisor.workerPid, 'a new worker serves');
    const total = [...sent.values()].reduce((a, b) => a + b, 0);
    assert.deepEqual(s1.messages, { in: total, out: total, dropped: 0 }, 'totals since start: each message counted once, across the two workers');
  } finally {
    for (const c of clients) {
      if ('ws' in c) c.ws.terminate();
      else c.socket.destroy();
    }
    sup.child.kill('SIGTERM');
    await sup.exited;
    p.remove();
  }
});
