/**
 * What a plugin can reach through `conn` (src/plugin/conn-handle.ts): the documented members and nothing else. The
 * probe runs inside the plugin, as hostile plugin code would, over a real WebSocket and a real TCP connection.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createHost } from '../../src/index.js';
import { tcpClient, wsClient } from '../helpers/clients.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';

/** The documented surface of `Conn` (docs/api.md), plus `constructor`, which every class instance has. */
const DOCUMENTED = ['close', 'constructor', 'id', 'join', 'leave', 'remoteAddress', 'send', 'state', 'transport'];

/** On `probe`, reports everything it can find on its `conn`; every other message counts in conn.state. */
function probePlugin(version: string): string {
  return `
import { definePlugin } from 'hotline';
export default definePlugin<{ handles: WeakSet<object> }, { n: number }>({
  name: 'probe', version: '${version}', api: 1,
  init: () => ({ handles: new WeakSet() }),
  migrate: (prev) => prev.state as { handles: WeakSet<object> },
  onOpen(conn, ctx) { conn.state = { n: 0 }; ctx.state.handles.add(conn); },
  onMessage(conn, data, ctx) {
    if (String(data) !== 'probe') { conn.state.n++; conn.send('${version}:' + conn.state.n); return; }
    const chain: string[] = [];
    for (let o: object | null = conn; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
      chain.push(...Object.getOwnPropertyNames(o), ...Object.getOwnPropertySymbols(o).map(String));
    }
    const c = conn as unknown as Record<string, unknown>;
    let filterGotHandle = false;
    ctx.broadcast('never sent', (x) => { if (x === conn) filterGotHandle = true; return false; });
    const proto = Object.getPrototypeOf(conn) as Record<string, unknown>;
    const originalSend = proto.send;
    try { proto.send = () => true; } catch {}
    let expando: unknown;
    try { c.extra = 1; expando = c.extra; } catch { expando = 'threw'; }
    conn.send(JSON.stringify({
      own: Object.getOwnPropertyNames(conn),
      ownSymbols: Object.getOwnPropertySymbols(conn).length,
      chain: [...new Set(chain)].sort(),
      internals: ['link', 'detach', 'receive', 'pump', 'closed', 'terminate', 'pendingEvents', 'handle', 'opened', 'isOpen', 'queued', '_socket', 'ws']
        .filter((k) => c[k] !== undefined),
      ownDescriptors: Object.keys(Object.getOwnPropertyDescriptors(conn)),
      json: JSON.stringify(conn),
      sameInContext: [...ctx.connections].includes(conn),
      filterGotHandle,
      sameAcrossSwaps: ctx.state.handles.has(conn),
      protoPatched: proto.send !== originalSend,
      expando,
      id: conn.id, transport: conn.transport, remoteAddress: conn.remoteAddress, state: conn.state,
    }));
  },
});
`;
}

interface Probe {
  own: string[];
  ownSymbols: number;
  chain: string[];
  internals: string[];
  ownDescriptors: string[];
  json: string;
  sameInContext: boolean;
  filterGotHandle: boolean;
  sameAcrossSwaps: boolean;
  protoPatched: boolean;
  expando: unknown;
  id: string;
  transport: string;
  remoteAddress: string;
  state: { n: number };
}

test('a plugin reaches only the documented members of conn, on WebSocket and TCP, before and after a swap', async () => {
  const p = pluginDir(probePlugin('v1'));
  const host = await createHost({ plugin: p.entry, listen: [{ transport: 'ws' }, { transport: 'tcp' }], logger: quietLogger });
  try {
    const [wsAddr, tcpAddr] = host.addresses();
    const clients = [await wsClient(wsAddr!.url), await tcpClient(tcpAddr!.port)];
    const probe = async (c: (typeof clients)[number]) => {
      c.send('probe');
      return JSON.parse(await c.inbox.next()) as Probe;
    };
    for (const c of clients) {
      c.send('a');
      assert.equal(await c.inbox.next(), 'v1:1');
    }
    const before = await Promise.all(clients.map(probe));
    p.write(probePlugin('v2'));
    await host.reload();
    for (const c of clients) {
      c.send('b');
      assert.equal(await c.inbox.next(), 'v2:2', 'conn.state carried across the swap, through the handle');
    }
    const after = await Promise.all(clients.map(probe));
    for (const [i, r] of [...before, ...after].entries()) {
      const where = `probe ${i}`;
      assert.deepEqual(r.own, [], `${where}: no own property names`);
      assert.equal(r.ownSymbols, 0, `${where}: no own symbols`);
      assert.deepEqual(r.ownDescriptors, [], where);
      assert.deepEqual(r.chain, DOCUMENTED, `${where}: the prototype chain holds the documented members only`);
      assert.deepEqual(r.internals, [], `${where}: no host internal is reachable`);
      assert.equal(r.json, '{}', `${where}: JSON.stringify(conn) leaks nothing`);
      assert.ok(r.sameInContext, `${where}: ctx.connections yields the same handle as the hook got`);
      assert.ok(r.filterGotHandle, `${where}: a broadcast filter gets the same handle`);
      assert.ok(r.sameAcrossSwaps, `${where}: one handle per connection, kept across swaps`);
      assert.equal(r.protoPatched, false, `${where}: the handle prototype cannot be patched`);
      assert.notEqual(r.expando, 1, `${where}: no expando property on a handle`);
      assert.match(r.id, /^[0-9a-v]{10}-[0-9a-z]+$/);
    }
    assert.deepEqual(before.map((r) => r.transport), ['ws', 'tcp']);
    assert.deepEqual(after.map((r) => r.id), before.map((r) => r.id), 'conn.id is stable across a swap');
    assert.deepEqual(after.map((r) => r.state.n), [2, 2]);
    for (const r of before) assert.ok(r.remoteAddress.includes('127.0.0.1'));
  } finally {
    await host.close();
    p.remove();
  }
});
