/**
 * TLS listeners, and what a process upgrade does with what cannot move. A TLS connection's session keys live in the
 * old worker's OpenSSL (nodejs/node#4037), so an upgrade sends it away: a WebSocket gets 1012 with a reconnect hint, a
 * TCP stream a clean end. So does a client whose handshake stalls past the upgrade's bound (a 503 with Retry-After).
 * Plain connections on the other listeners of the same worker still move without a close. Real supervisor and
 * worker processes, real sockets, a certificate made by openssl at test time.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { after, before, test } from 'node:test';
import tls from 'node:tls';
import WebSocket from 'ws';
import { adminRequest } from '../../src/admin/admin-client.js';
import { connect } from '../../src/client/index.js';
import type { WebSocketConstructor } from '../../src/client/client.js';
import type { ListenerSpec } from '../../src/handoff/protocol.js';
import type { UpgradeSummary } from '../../src/handoff/upgrade.js';
import { createHost, isHotlineError } from '../../src/index.js';
import { HotlineProcess, runHotline } from '../e2e/hotline-process.js';
import { type TcpClient, type WsClient, tcpClient, wsClient } from '../helpers/clients.js';
import { counterPlugin, pluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';
import { selfSignedCert, type TestCert } from '../helpers/tls-cert.js';
import { ExactnessChecker, streamPlugin } from '../session/fixtures.js';
import { type SupervisorFixture, startSupervisor } from './supervisor-process.js';

const PER_LISTENER = 4;

let cert: TestCert;

before(() => {
  cert = selfSignedCert();
});

after(() => cert.remove());

/** Resolve with `p`, or reject naming `what` after `ms`. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms)));
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** A client that sends half of a WebSocket upgrade request and then says nothing. Records what it is sent. */
interface Stalled {
  socket: Duplex;
  received: () => string;
  closed: Promise<void>;
}

async function stalledHandshake(port: number, secure: boolean): Promise<Stalled> {
  const socket = secure ? tls.connect({ port, host: '127.0.0.1', ca: cert.ca }) : net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once(secure ? 'secureConnect' : 'connect', () => resolve());
    socket.once('error', reject);
  });
  let text = '';
  socket.setEncoding('utf8');
  socket.on('data', (c: string) => (text += c));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  // The request line and one header, but never the blank line that ends the head.
  socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n');
  return { socket, received: () => text, closed };
}

test('an upgrade sends away TLS connections (1012, TCP end) and stalled handshakes (503), counts them, and moves the plain ones', { timeout: 120_000 }, async () => {
  const p = pluginDir(counterPlugin('v1'));
  const admin = path.join(p.dir, 'admin.sock');
  const envFile = path.join(p.dir, 'worker.env');
  writeFileSync(envFile, '');
  const tlsFiles = { cert: cert.cert, key: cert.key };
  const listen: ListenerSpec[] = [
    { transport: 'ws', host: '127.0.0.1', port: 0 },
    { transport: 'ws', host: '127.0.0.1', port: 0, tls: tlsFiles },
    { transport: 'tcp', host: '127.0.0.1', port: 0, framing: 'lines' },
    { transport: 'tcp', host: '127.0.0.1', port: 0, framing: 'lines', tls: tlsFiles },
  ];
  let sup: SupervisorFixture | undefined;
  const plain: Array<WsClient | TcpClient> = [];
  const secure: { ws: WsClient[]; tcp: TcpClient[] } = { ws: [], tcp: [] };
  const stalled: Stalled[] = [];
  try {
    sup = await startSupervisor({ entry: p.entry, admin, envFile, readyTimeoutMs: 30_000, listen });
    const { addresses } = sup;
    assert.deepEqual(addresses.map((a) => a.tls), [false, true, false, true]);
    const [wsPort, wssPort, tcpPort, tlsPort] = addresses.map((a) => a.port) as [number, number, number, number];

    // The stalled clients connect first: the real clients that complete their handshakes after them, on the same
    // listeners, prove the worker has accepted them (a listener accepts in order).
    stalled.push(await stalledHandshake(wsPort, false), await stalledHandshake(wssPort, true));
    for (let i = 0; i < PER_LISTENER; i++) {
      plain.push(await wsClient(`ws://127.0.0.1:${wsPort}/`), await tcpClient(tcpPort));
      secure.ws.push(await wsClient(`wss://127.0.0.1:${wssPort}/`, { ca: cert.ca }));
      secure.tcp.push(await tcpClient(tlsPort, '127.0.0.1', { ca: cert.ca }));
    }
    let plainCloses = 0;
    for (const c of plain) void c.closed.then(() => plainCloses++);
    const tlsEnds = secure.tcp.map((c) => {
      let ended = false;
      c.socket.once('end', () => (ended = true));
      return new Promise<{ ended: boolean; hadError: boolean }>((resolve) => c.socket.once('close', (hadError: boolean) => resolve({ ended, hadError })));
    });

    // Every client, TLS or not, echoes before the upgrade.
    const sent = new Map<WsClient | TcpClient, number>();
    const round = async (clients: Array<WsClient | TcpClient>) => {
      for (const c of clients) {
        const n = (sent.get(c) ?? 0) + 1;
        sent.set(c, n);
        c.send(`m${n}`);
      }
      await Promise.all(clients.map((c) => c.inbox.waitFor(sent.get(c)!, 30_000)));
    };
    await round([...plain, ...secure.ws, ...secure.tcp]);

    // The upgrade, with the plain clients streaming all through it.
    let streaming = true;
    const traffic = (async () => {
      while (streaming) await round(plain);
    })();
    let summary: UpgradeSummary;
    try {
      summary = (await adminRequest(admin, 'upgrade', 60_000)) as UpgradeSummary;
    } finally {
      streaming = false;
      await traffic;
    }
    assert.equal(summary.outcome, 'committed', JSON.stringify(summary));
    assert.equal(summary.moved, 2 * PER_LISTENER, 'every plain connection moved');
    assert.equal(summary.sentAway, 2 * PER_LISTENER + stalled.length, 'every TLS connection and stalled handshake sentAway');
    assert.equal(summary.failed, 0);

    for (const c of secure.ws) {
      const { code, reason } = await within(c.closed, 15_000, 'close of a wss client');
      assert.equal(code, 1012, 'service restart');
      assert.match(reason, /reconnect/, 'a reconnect hint');
    }
    for (const ending of tlsEnds) {
      assert.deepEqual(await within(ending, 15_000, 'end of a TLS stream'), { ended: true, hadError: false }, 'a clean end');
    }
    for (const s of stalled) {
      await within(s.closed, 15_000, 'close of a stalled handshake');
      assert.match(s.received(), /^HTTP\/1\.1 503 Service Unavailable\r\n(.*\r\n)*Retry-After: \d+\r\n/, 'told to come back');
    }

    // The plain clients never saw a close, and every reply came in order with its per-connection count.
    await round(plain);
    assert.equal(plainCloses, 0);
    for (const c of plain) {
      assert.equal(c.inbox.messages.length, sent.get(c));
      c.inbox.messages.forEach((m, i) => {
        const [head, data] = m.split('|');
        assert.equal(data, `m${i + 1}`, 'in order, none lost or duplicated');
        assert.equal(Number(head!.split(':')[1]), i + 1, 'per-connection state carried over');
      });
    }

    // The new worker wrapped the handed listeners with TLS again: new TLS clients are served on the same ports.
    const wssAgain = await wsClient(`wss://127.0.0.1:${wssPort}/`, { ca: cert.ca });
    const tlsAgain = await tcpClient(tlsPort, '127.0.0.1', { ca: cert.ca });
    secure.ws.push(wssAgain);
    secure.tcp.push(tlsAgain);
    for (const c of [wssAgain, tlsAgain]) {
      c.send('back');
      await c.inbox.waitFor(1, 15_000);
      assert.match(c.inbox.messages[0]!, /^v1:1:\d+\|back$/);
    }
  } finally {
    for (const c of [...plain, ...secure.ws, ...secure.tcp]) {
      if ('ws' in c) c.ws.terminate();
      else c.socket.destroy();
    }
    for (const s of stalled) s.socket.destroy();
    sup?.child.kill('SIGTERM');
    await sup?.exited;
    p.remove();
  }
});

test('createHost: wss:// and tls:// listeners serve; a missing, invalid or mismatched certificate is HOTLINE_E_TLS_CONFIG', async () => {
  const p = pluginDir(counterPlugin('v1'));
  try {
    const files = { cert: cert.cert, key: cert.key };
    const host = await createHost({
      plugin: p.entry,
      logger: quietLogger,
      listen: [
        { transport: 'ws', tls: files },
        { transport: 'tcp', tls: files },
      ],
    });
    try {
      const [wss, tlsTcp] = host.addresses();
      assert.match(wss!.url, /^wss:\/\/127\.0\.0\.1:\d+\/$/);
      assert.match(tlsTcp!.url, /^tls:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(wss!.tls, true);
      const w = await wsClient(wss!.url, { ca: cert.ca });
      const t = await tcpClient(tlsTcp!.port, '127.0.0.1', { ca: cert.ca });
      w.send('a');
      assert.equal(await w.inbox.next(), 'v1:1:1|a');
      t.send('b');
      assert.equal(await t.inbox.next(), 'v1:1:2|b');
      // A plain-text client on the TLS port gets no service.
      await assert.rejects(wsClient(wss!.url.replace('wss:', 'ws:')));
      w.ws.close();
      t.socket.end();
    } finally {
      await host.close();
    }

    const other = selfSignedCert();
    const notPem = p.write('hello\n', 'not-a-cert.pem');
    try {
      const cases: Array<[string, unknown]> = [
        ['missing certificate', { cert: path.join(p.dir, 'nope.pem'), key: cert.key }],
        ['not PEM', { cert: notPem, key: cert.key }],
        ['key of another certificate', { cert: cert.cert, key: other.key }],
        ['no key', { cert: cert.cert }],
      ];
      for (const [what, tlsOpts] of cases) {
        await assert.rejects(
          createHost({ plugin: p.entry, logger: quietLogger, listen: [{ transport: 'ws', tls: tlsOpts as { cert: string; key: string } }] }),
          (err) => isHotlineError(err, 'HOTLINE_E_TLS_CONFIG'),
          what,
        );
      }
    } finally {
      other.remove();
    }
  } finally {
    p.remove();
  }
});

test('hotline start: a missing or half-given certificate exits 1 with HOTLINE_E_TLS_CONFIG before serving', async () => {
  const p = pluginDir(counterPlugin('v1'));
  const admin = path.join(p.dir, 'admin.sock');
  try {
    for (const [command, flags, message] of [
      ['start', ['--tls-cert', path.join(p.dir, 'missing.pem'), '--tls-key', cert.key], /cannot read the certificate .*missing\.pem/],
      ['start', ['--tls-cert', cert.cert], /--tls-cert and --tls-key go together/],
      ['dev', ['--tls-cert', cert.key, '--tls-key', cert.cert], /OpenSSL refused/],
    ] as const) {
      const r = await runHotline([command, p.entry, '--port', '0', '--admin', admin, ...flags], p.dir);
      assert.equal(r.code, 1, `${command} ${flags.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /^hotline: HOTLINE_E_TLS_CONFIG: /m);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stdout, /serving/);
    }
  } finally {
    p.remove();
  }
});

test('hotline dev --transport tcp --tls-cert --tls-key: the ready line names tls://, and a TLS client is served', async () => {
  const p = pluginDir(counterPlugin('v1'));
  const admin = path.join(p.dir, 'admin.sock');
  const { proc, ready } = await HotlineProcess.start(
    ['dev', p.entry, '--port', '0', '--admin', admin, '--transport', 'tcp', '--tls-cert', cert.cert, '--tls-key', cert.key],
    p.dir,
  );
  try {
    const m = /^tls:\/\/127\.0\.0\.1:(\d+)$/.exec(ready.url);
    assert.ok(m, ready.line);
    const c = await tcpClient(Number(m[1]), '127.0.0.1', { ca: cert.ca });
    c.send('hello');
    assert.equal(await c.inbox.next(), 'v1:1:1|hello');
    c.socket.destroy();
  } finally {
    proc.kill('SIGKILL');
    await proc.exited;
    p.remove();
  }
});

test('hotline start --tls-cert --tls-key --sessions: wss:// ready line; an upgrade sends away the TLS clients and hotline/client resumes over wss', { timeout: 90_000 }, async () => {
  const p = pluginDir(streamPlugin(10));
  const admin = path.join(p.dir, 'admin.sock');
  const { proc, ready } = await HotlineProcess.start(
    ['start', p.entry, '--port', '0', '--admin', admin, '--sessions', '--tls-cert', cert.cert, '--tls-key', cert.key],
    p.dir,
  );
  // hotline/client takes its WebSocket class: this one trusts the test certificate.
  const ca = cert.ca;
  class TrustingWebSocket extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, { ca });
    }
  }
  const client = connect(ready.url, { WebSocket: TrustingWebSocket as unknown as WebSocketConstructor, backoff: { initialDelay: 50, maxDelay: 500 } });
  const check = new ExactnessChecker(client);
  let plain: WsClient | undefined;
  try {
    assert.match(ready.line, /^hotline: serving \S+ on wss:\/\/127\.0\.0\.1:\d+\/ admin /);
    plain = await wsClient(ready.url, { ca });
    let sent = 0;
    const send = (n: number) => {
      for (let i = 0; i < n; i++) client.send(String(++sent));
    };
    send(20);
    await check.until(() => check.replies >= 20 && check.ticks > 0, 'replies before the upgrade', 30_000);

    const up = await runHotline(['upgrade', '--admin', admin, '--json'], p.dir);
    assert.equal(up.code, 0, up.stderr + up.stdout);
    const summary = JSON.parse(up.stdout) as UpgradeSummary;
    assert.equal(summary.outcome, 'committed');
    assert.equal(summary.moved, 0);
    assert.equal(summary.sentAway, 2, 'the session client and the plain wss client');
    const { code } = await within(plain.closed, 15_000, 'close of the plain wss client');
    assert.equal(code, 1012);

    await check.until(() => check.resumes >= 1, 'a resume over wss after the upgrade', 30_000);
    send(20);
    await check.until(() => check.replies === sent, 'every reply', 30_000);
    assert.deepEqual(check.errors, [], 'exactly once, in order, both ways');
    assert.deepEqual(check.lost, [], 'no session lost');
  } finally {
    client.close();
    plain?.ws.terminate();
    proc.kill('SIGKILL');
    await proc.exited;
    p.remove();
  }
});
