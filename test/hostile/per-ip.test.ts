/**
 * Issue 9 item 6: per-IP limits on a real host over real sockets. One address over limits.maxConnectionsPerIp is
 * refused before any work (WS 503 before the upgrade, TCP closed at accept), one over limits.handshakeRatePerIp gets
 * WS 429; both report HOTLINE_E_IP_LIMIT, other addresses (127.0.0.2 on loopback) are not affected, and the
 * defaults are off (the rest of the suite opens thousands of loopback connections).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import WebSocket from 'ws';
import { createHost } from '../../src/index.js';
import { tcpClient, wsClient } from '../helpers/clients.js';
import { counterPlugin, pluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';

/** 101 when the upgrade is accepted (the socket is kept in `open`), else the refusal's HTTP status (0: no response). */
function upgrade(url: string, open: WebSocket[], localAddress?: string): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { localAddress });
    ws.once('open', () => {
      open.push(ws);
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
    });
    ws.once('error', () => resolve(0));
  });
}

/** True when a TCP connect is served (a line echoed), false when the host closes it at once. */
function tcpServed(port: number, held: net.Socket[]): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = '';
    s.setEncoding('utf8');
    s.once('connect', () => s.write('x\n'));
    s.on('data', (d: string) => {
      buf += d;
      if (buf.includes('\n')) {
        held.push(s);
        resolve(true);
      }
    });
    s.once('close', () => resolve(false));
    s.once('error', () => resolve(false));
  });
}

test('maxConnectionsPerIp: WS 503 and TCP close past the limit, coded; other addresses and freed slots are served', async () => {
  const p = pluginDir(counterPlugin('v1'));
  const host = await createHost({
    plugin: p.entry,
    listen: [{ transport: 'ws' }, { transport: 'tcp' }],
    limits: { maxConnectionsPerIp: 4 },
    logger: quietLogger,
  });
  const codes: string[] = [];
  host.on('connection-error', (err) => codes.push(err.code));
  const [wsAddr, tcpAddr] = host.addresses();
  const open: WebSocket[] = [];
  const held: net.Socket[] = [];
  try {
    // WS and TCP share the address's count: 2 + 2, then both kinds are refused.
    for (let i = 0; i < 2; i++) assert.equal(await upgrade(wsAddr!.url, open), 101);
    for (let i = 0; i < 2; i++) assert.equal(await tcpServed(tcpAddr!.port, held), true);
    assert.equal(await upgrade(wsAddr!.url, open), 503);
    assert.equal(await tcpServed(tcpAddr!.port, held), false);
    assert.deepEqual([...new Set(codes)], ['HOTLINE_E_IP_LIMIT']);
    // Another address is served, and the host still answers the ones it holds.
    assert.equal(await upgrade(wsAddr!.url, open, '127.0.0.2'), 101);
    const c = await wsClient(wsAddr!.url, { localAddress: '127.0.0.2' });
    c.send('hi');
    assert.match(await c.inbox.next(), /\|hi$/);
    c.ws.terminate();
    // A closed socket frees its slot.
    const first = open.shift()!;
    await new Promise<void>((resolve) => {
      first.once('close', () => resolve());
      first.terminate();
    });
    const deadline = Date.now() + 10_000;
    let status = 0;
    while ((status = await upgrade(wsAddr!.url, open)) !== 101 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(status, 101);
  } finally {
    for (const ws of open) ws.terminate();
    for (const s of held) s.destroy();
    await host.close();
    p.remove();
  }
});

test('handshakeRatePerIp: a burst past the bucket gets WS 429 (and TCP closed); the host keeps serving', async () => {
  const p = pluginDir(counterPlugin('v1'));
  const RATE = 5;
  const host = await createHost({
    plugin: p.entry,
    listen: [{ transport: 'ws' }, { transport: 'tcp' }],
    limits: { handshakeRatePerIp: RATE },
    logger: quietLogger,
  });
  const codes: string[] = [];
  host.on('connection-error', (err) => codes.push(err.code));
  const [wsAddr, tcpAddr] = host.addresses();
  const open: WebSocket[] = [];
  const held: net.Socket[] = [];
  try {
    const started = performance.now();
    const statuses = await Promise.all(Array.from({ length: 40 }, () => upgrade(wsAddr!.url, open)));
    const elapsedS = (performance.now() - started) / 1000;
    const accepted = statuses.filter((s) => s === 101).length;
    const refused = statuses.filter((s) => s === 429).length;
    assert.equal(accepted + refused, 40, `statuses: ${statuses.join(',')}`);
    // The burst is RATE; the bucket refills RATE per second of the burst's own duration.
    assert.ok(accepted >= RATE && accepted <= RATE + Math.ceil(elapsedS * RATE) + 1, `accepted ${accepted} in ${elapsedS} s`);
    assert.ok(codes.includes('HOTLINE_E_IP_LIMIT'));
    // Reports are throttled: far fewer lines than refusals.
    assert.ok(codes.filter((c) => c === 'HOTLINE_E_IP_LIMIT').length <= Math.ceil(elapsedS) + 1);
    // TCP shares the bucket: right after the burst it is empty.
    assert.equal(await tcpServed(tcpAddr!.port, held), false);
    // What was admitted is served.
    open[0]!.send('ping');
    const reply = await new Promise<string>((resolve) => open[0]!.once('message', (d) => resolve(String(d))));
    assert.match(reply, /\|ping$/);
  } finally {
    for (const ws of open) ws.terminate();
    for (const s of held) s.destroy();
    await host.close();
    p.remove();
  }
});

test('both per-IP limits are off by default: 300 loopback connections from one address are served', async () => {
  const p = pluginDir(counterPlugin('v1'));
  const host = await createHost({ plugin: p.entry, listen: [{ transport: 'tcp' }], logger: quietLogger });
  const clients = [];
  try {
    for (let i = 0; i < 300; i += 50) clients.push(...(await Promise.all(Array.from({ length: 50 }, () => tcpClient(host.addresses()[0]!.port)))));
    const deadline = Date.now() + 10_000;
    while (host.status().connections < 300 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(host.status().connections, 300);
  } finally {
    for (const c of clients) c.socket.destroy();
    await host.close();
    p.remove();
  }
});
