/**
 * Issue 9 item 6: per-IP limits on a real host over real sockets. One address over limits.maxConnectionsPerIp is
 * refused before any work (WS 503 before the upgrade, TCP closed at accept), one over limits.handshakeRatePerIp gets
 * WS 429 after a hold of its Retry-After; both report HOTLINE_E_IP_LIMIT, other addresses (127.0.0.2 on loopback) are not affected, and the
 * defaults are off (the rest of the suite opens thousands of loopback connections).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import type WebSocket from 'ws';
import { createHost, type HostLimits } from '../../src/index.js';
import type { ListenAddress } from '../../src/transport/transport.js';
import { tcpClient, until, upgradeStatus, wsClient } from '../helpers/clients.js';
import { counterPlugin, pluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';

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

interface Rig {
  codes: string[];
  wsAddr: ListenAddress;
  tcpAddr: ListenAddress;
  /** Sockets the test keeps open; closed at the end. */
  open: WebSocket[];
  held: net.Socket[];
}

/** A host with a WS and a TCP listener and these limits, for the time of `fn`. */
async function withHost(limits: HostLimits, fn: (rig: Rig) => Promise<void>): Promise<void> {
  const p = pluginDir(counterPlugin('v1'));
  const host = await createHost({ plugin: p.entry, listen: [{ transport: 'ws' }, { transport: 'tcp' }], limits, logger: quietLogger });
  const codes: string[] = [];
  host.on('connection-error', (err) => codes.push(err.code));
  const [wsAddr, tcpAddr] = host.addresses();
  const rig: Rig = { codes, wsAddr: wsAddr!, tcpAddr: tcpAddr!, open: [], held: [] };
  try {
    await fn(rig);
  } finally {
    for (const ws of rig.open) ws.terminate();
    for (const s of rig.held) s.destroy();
    await host.close();
    p.remove();
  }
}

test('maxConnectionsPerIp: WS 503 and TCP close past the limit, coded; other addresses and freed slots are served', async () => {
  await withHost({ maxConnectionsPerIp: 4 }, async ({ codes, wsAddr, tcpAddr, open, held }) => {
    // WS and TCP share the address's count: 2 + 2, then both kinds are refused.
    for (let i = 0; i < 2; i++) assert.equal(await upgradeStatus(wsAddr.url, { keep: open }), 101);
    for (let i = 0; i < 2; i++) assert.equal(await tcpServed(tcpAddr.port, held), true);
    assert.equal(await upgradeStatus(wsAddr.url, { keep: open }), 503);
    assert.equal(await tcpServed(tcpAddr.port, held), false);
    assert.deepEqual([...new Set(codes)], ['HOTLINE_E_IP_LIMIT']);
    // Another address is served, and the host still answers the ones it holds.
    assert.equal(await upgradeStatus(wsAddr.url, { keep: open, localAddress: '127.0.0.2' }), 101);
    const c = await wsClient(wsAddr.url, { localAddress: '127.0.0.2' });
    c.send('hi');
    assert.match(await c.inbox.next(), /\|hi$/);
    c.ws.terminate();
    // A closed socket frees its slot.
    const first = open.shift()!;
    await new Promise<void>((resolve) => {
      first.once('close', () => resolve());
      first.terminate();
    });
    await until(async () => (await upgradeStatus(wsAddr.url, { keep: open })) === 101, 'the freed slot');
  });
});

test('handshakeRatePerIp: a burst past the bucket gets WS 429 (and TCP closed); the host keeps serving', async () => {
  const RATE = 5;
  await withHost({ handshakeRatePerIp: RATE }, async ({ codes, wsAddr, tcpAddr, open, held }) => {
    const started = performance.now();
    const statuses = await Promise.all(Array.from({ length: 40 }, () => upgradeStatus(wsAddr.url, { keep: open })));
    const elapsedS = (performance.now() - started) / 1000;
    const accepted = statuses.filter((s) => s === 101).length;
    const refused = statuses.filter((s) => s === 429).length;
    assert.equal(accepted + refused, 40, `statuses: ${statuses.join(',')}`);
    // The burst is RATE; the bucket refills RATE per second of the burst's own duration.
    assert.ok(accepted >= RATE && accepted <= RATE + Math.ceil(elapsedS * RATE) + 1, `accepted ${accepted} in ${elapsedS} s`);
    assert.ok(codes.includes('HOTLINE_E_IP_LIMIT'));
    // Reports are throttled: far fewer lines than refusals.
    assert.ok(codes.filter((c) => c === 'HOTLINE_E_IP_LIMIT').length <= Math.ceil(elapsedS) + 1);
    // TCP shares the bucket: right after the burst it is (nearly) empty, so most of a TCP burst is closed at accept.
    const tcp = await Promise.all(Array.from({ length: 10 }, () => tcpServed(tcpAddr.port, held)));
    assert.ok(tcp.filter((served) => !served).length >= 5, `tcp served: ${tcp.join(',')}`);
    // What was admitted is served.
    open[0]!.send('ping');
    const reply = await new Promise<string>((resolve) => open[0]!.once('message', (d) => resolve(String(d))));
    assert.match(reply, /\|ping$/);
  });
});

test('handshakeRatePerIp: a refusal is held for its Retry-After, so a client retrying at once gets a few tries a second, not thousands', async () => {
  const RATE = 5;
  const LOOPS = 10;
  await withHost({ handshakeRatePerIp: RATE }, async ({ wsAddr }) => {
    // Each loop retries the moment it is refused, as the hello-then-drop client of bench R2 does.
    let refused = 0;
    let accepted = 0;
    let other = 0;
    const started = performance.now();
    const deadline = started + 2500;
    await Promise.all(
      Array.from({ length: LOOPS }, async () => {
        while (performance.now() < deadline) {
          const status = await upgradeStatus(wsAddr.url);
          if (status === 429) refused++;
          else if (status === 101) accepted++;
          else other++;
        }
      }),
    );
    const elapsedS = (performance.now() - started) / 1000;
    assert.equal(other, 0, 'every try is answered 101 or 429');
    // Held one second each, a loop's refusals number at most one per second of the run, plus the one in flight.
    assert.ok(refused <= LOOPS * (Math.ceil(elapsedS) + 1), `${refused} refused in ${elapsedS.toFixed(1)} s by ${LOOPS} loops`);
    assert.ok(refused >= LOOPS, `each loop was refused at least once (${refused})`);
    assert.ok(accepted <= RATE + Math.ceil(elapsedS * RATE) + 1, `accepted ${accepted}`);
  });
});

test('both per-IP limits are off by default: 300 loopback connections from one address are served', async () => {
  const p = pluginDir(counterPlugin('v1'));
  const host = await createHost({ plugin: p.entry, listen: [{ transport: 'tcp' }], logger: quietLogger });
  const clients = [];
  try {
    for (let i = 0; i < 300; i += 50) clients.push(...(await Promise.all(Array.from({ length: 50 }, () => tcpClient(host.addresses()[0]!.port)))));
    await until(() => host.status().connections === 300, '300 connections');
  } finally {
    for (const c of clients) c.socket.destroy();
    await host.close();
    p.remove();
  }
});
