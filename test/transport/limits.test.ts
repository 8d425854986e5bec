/**
 * Connection limits, each with its coded error: maxPayload (ws 1009; tcp lines and length framing close the stream),
 * maxConnections (ws 503, tcp closed), the slow-consumer send buffer (1008, memory bounded), and the handshake timeout.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import WebSocket from 'ws';
import { createHost, type Host, type HostOptions, type HotlineError } from '../../src/index.js';
import { tcpClient, wsClient } from '../helpers/clients.js';
import { pluginDir, type PluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';

const ECHO = `
import { definePlugin } from 'hotline';
export default definePlugin({
  name: 'echo', version: '1', api: 1,
  onMessage(conn, data) {
    if (typeof data === 'string') conn.send('len:' + data.length);
    else conn.send('bytes:' + data.length);
  },
});
`;

interface Setup {
  host: Host;
  plugin: PluginDir;
  errors: Array<{ err: HotlineError; conn: string | undefined }>;
  /** Resolves with the first connection error that has `code`. */
  nextError(code: string): Promise<HotlineError>;
  close(): Promise<void>;
}

async function setup(options: Partial<HostOptions>, source = ECHO): Promise<Setup> {
  const plugin = pluginDir(source);
  const host = await createHost({ plugin: plugin.entry, logger: quietLogger, shutdownTimeout: 1_000, ...options });
  const errors: Setup['errors'] = [];
  host.on('connection-error', (err, conn) => errors.push({ err, conn }));
  return {
    host,
    plugin,
    errors,
    nextError: (code) =>
      new Promise((resolve) => {
        const seen = errors.find((e) => e.err.code === code);
        if (seen) return resolve(seen.err);
        const on = (err: HotlineError) => {
          if (err.code !== code) return;
          host.off('connection-error', on);
          resolve(err);
        };
        host.on('connection-error', on);
      }),
    async close() {
      await host.close();
      plugin.remove();
    },
  };
}

function socketClosed(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve();
    socket.on('close', () => resolve());
  });
}

test('maxPayload over WebSocket: a message at the limit passes, one byte more closes with 1009', async () => {
  const s = await setup({ limits: { maxPayload: 1024 } });
  try {
    const ws = await wsClient(s.host.addresses()[0]!.url);
    ws.send('x'.repeat(1024));
    assert.equal(await ws.inbox.next(), 'len:1024');
    ws.send('x'.repeat(1025));
    const [closed, err] = await Promise.all([ws.closed, s.nextError('HOTLINE_E_PAYLOAD_TOO_LARGE')]);
    assert.equal(closed.code, 1009);
    assert.match(err.message, /maxPayload \(1024 bytes\)/);
    assert.equal(s.host.status().connections, 0);
  } finally {
    await s.close();
  }
});

test('maxPayload over TCP lines: a long line, and a long unterminated line, close the connection with a coded error', async () => {
  const s = await setup({ listen: [{ transport: 'tcp', framing: 'lines' }], limits: { maxPayload: 64 } });
  try {
    const port = s.host.addresses()[0]!.port;
    const ok = await tcpClient(port);
    ok.send('y'.repeat(64));
    assert.equal(await ok.inbox.next(), 'len:64');

    const long = await tcpClient(port);
    long.send('z'.repeat(65));
    await long.closed;
    // An unterminated line is refused once its buffered part passes the limit, without waiting for a newline.
    const endless = await tcpClient(port);
    endless.socket.write('w'.repeat(100));
    await endless.closed;
    await s.nextError('HOTLINE_E_PAYLOAD_TOO_LARGE');
    for (let i = 0; i < 500 && s.errors.length < 2; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(s.errors.filter((e) => e.err.code === 'HOTLINE_E_PAYLOAD_TOO_LARGE').length, 2);
    assert.equal(long.inbox.messages.length, 0);

    ok.send('still-here');
    assert.equal(await ok.inbox.next(), 'len:10', 'other connections are unaffected');
    ok.socket.end();
  } finally {
    await s.close();
  }
});

test('maxPayload over TCP length framing: refused on the header alone, connection closed', async () => {
  const s = await setup({ listen: [{ transport: 'tcp', framing: 'length' }], limits: { maxPayload: 64 } });
  try {
    const port = s.host.addresses()[0]!.port;
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    const frame = (body: Buffer) => {
      const h = Buffer.alloc(4);
      h.writeUInt32BE(body.length);
      return Buffer.concat([h, body]);
    };
    socket.write(frame(Buffer.alloc(64, 1)));
    // Only the header of a 1 MB frame: the host must not wait for the body to refuse it.
    const header = Buffer.alloc(4);
    header.writeUInt32BE(1024 * 1024);
    socket.write(header);
    const [err] = await Promise.all([s.nextError('HOTLINE_E_PAYLOAD_TOO_LARGE'), socketClosed(socket)]);
    assert.match(err.message, /exceeds maxPayload \(64 bytes\)/);
    const reply = Buffer.concat(chunks);
    assert.equal(reply.readUInt32BE(0), 'bytes:64'.length);
    assert.equal(reply.subarray(4).toString(), 'bytes:64');
  } finally {
    await s.close();
  }
});

test('maxConnections: the extra WebSocket gets HTTP 503 and the extra TCP socket is closed, with a coded error', async () => {
  const s = await setup({ listen: [{ transport: 'ws' }, { transport: 'tcp' }], limits: { maxConnections: 2 } });
  try {
    const [wsAddr, tcpAddr] = s.host.addresses();
    const a = await wsClient(wsAddr!.url);
    const b = await tcpClient(tcpAddr!.port);
    for (let i = 0; i < 500 && s.host.status().connections < 2; i++) await new Promise((r) => setTimeout(r, 2));

    const extra = new WebSocket(wsAddr!.url);
    const status = await new Promise<number>((resolve, reject) => {
      extra.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      extra.on('open', () => reject(new Error('the extra WebSocket was accepted')));
      extra.on('error', () => undefined);
    });
    assert.equal(status, 503);

    const extraTcp = net.connect(tcpAddr!.port, '127.0.0.1');
    extraTcp.on('error', () => undefined);
    await socketClosed(extraTcp);
    for (let i = 0; i < 500 && s.errors.length < 2; i++) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(s.errors.map((e) => e.err.code), ['HOTLINE_E_MAX_CONNECTIONS', 'HOTLINE_E_MAX_CONNECTIONS']);
    assert.equal(s.host.status().connections, 2);

    // A freed slot is usable again.
    a.ws.close();
    await a.closed;
    for (let i = 0; i < 500 && s.host.status().connections > 1; i++) await new Promise((r) => setTimeout(r, 2));
    const c = await wsClient(wsAddr!.url);
    c.send('hi');
    assert.equal(await c.inbox.next(), 'len:2');
    c.ws.close();
    b.socket.end();
  } finally {
    await s.close();
  }
});

/** On `flood`, sends 16 KiB messages until send() refuses; counts the accepted ones in a global. */
const FLOOD = `
import { definePlugin } from 'hotline';
const stats = ((globalThis as Record<symbol, { accepted: number; refused: boolean }>)[Symbol.for('hotline.test.flood')] ??= { accepted: 0, refused: false });
const chunk = 'f'.repeat(16 * 1024);
export default definePlugin({
  name: 'flood', version: '1', api: 1,
  onMessage(conn, data, ctx) {
    if (data !== 'flood') { conn.send('pong'); return; }
    let n = 0;
    const burst = () => {
      // A bound in case the limit is broken: 4096 x 16 KiB = 64 MiB at most.
      for (let i = 0; i < 32 && n < 4096; i++, n++) {
        if (!conn.send(chunk)) { stats.refused = true; return; }
        stats.accepted++;
      }
      if (n < 4096) ctx.setTimeout(burst, 0);
    };
    burst();
  },
});
`;

test('slow consumer: a client that stops reading is closed with 1008 and its send buffer stays bounded', async () => {
  const maxSendBuffer = 256 * 1024;
  const s = await setup({ limits: { maxSendBuffer } }, FLOOD);
  const key = Symbol.for('hotline.test.flood');
  try {
    const slow = await wsClient(s.host.addresses()[0]!.url);
    const fine = await wsClient(s.host.addresses()[0]!.url);
    slow.ws.pause();
    slow.send('flood');
    const err = await s.nextError('HOTLINE_E_SLOW_CONSUMER');
    const queued = Number(/has (\d+) bytes queued/.exec(err.message)?.[1]);
    assert.ok(queued > maxSendBuffer, `${queued} bytes queued when refused`);
    assert.ok(queued <= maxSendBuffer + 16 * 1024 + 16, `at most one message over the limit, got ${queued}`);
    const stats = (globalThis as Record<symbol, { accepted: number; refused: boolean }>)[key]!;
    for (let i = 0; i < 1000 && !stats.refused; i++) await new Promise((r) => setTimeout(r, 2));
    assert.equal(stats.refused, true, 'send() returned false once the connection was closing');
    assert.ok(stats.accepted < 4096, `the flood stopped at ${stats.accepted} messages`);

    slow.ws.resume();
    assert.equal((await slow.closed).code, 1008);
    fine.send('ping');
    assert.equal(await fine.inbox.next(), 'pong', 'other clients are unaffected');
    fine.ws.close();
  } finally {
    delete (globalThis as Record<symbol, unknown>)[key];
    await s.close();
  }
});

test('slow consumer over TCP: a client that stops reading is cut off with a coded error', async () => {
  const maxSendBuffer = 256 * 1024;
  const s = await setup({ listen: [{ transport: 'tcp' }], limits: { maxSendBuffer } }, FLOOD);
  const key = Symbol.for('hotline.test.flood');
  try {
    const port = s.host.addresses()[0]!.port;
    const slow = await tcpClient(port);
    const fine = await tcpClient(port);
    slow.socket.pause();
    slow.send('flood');
    const err = await s.nextError('HOTLINE_E_SLOW_CONSUMER');
    const queued = Number(/has (\d+) bytes queued/.exec(err.message)?.[1]);
    assert.ok(queued > maxSendBuffer && queued <= maxSendBuffer + 16 * 1024 + 1, `${queued} bytes queued when refused`);
    // The host lets go of the stalled socket (end, then destroy after a grace period): it leaves the table.
    for (let i = 0; i < 1000 && s.host.status().connections > 1; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(s.host.status().connections, 1);
    slow.socket.resume();
    await slow.closed;
    fine.send('ping');
    assert.equal(await fine.inbox.next(), 'pong');
    fine.socket.end();
  } finally {
    delete (globalThis as Record<symbol, unknown>)[key];
    await s.close();
  }
});

test('handshake timeout: a raw TCP connection to the ws port that sends nothing, or half a request, is closed', async () => {
  const s = await setup({ limits: { handshakeTimeout: 200 } });
  try {
    const port = s.host.addresses()[0]!.port;
    const silent = net.connect(port, '127.0.0.1');
    const partial = net.connect(port, '127.0.0.1');
    for (const sock of [silent, partial]) sock.on('error', () => undefined);
    partial.once('connect', () => partial.write('GET / HTTP/1.1\r\nHost: x\r\n'));
    await Promise.all([socketClosed(silent), socketClosed(partial)]);
    for (let i = 0; i < 500 && s.errors.length < 2; i++) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(s.errors.map((e) => e.err.code), ['HOTLINE_E_HANDSHAKE_TIMEOUT', 'HOTLINE_E_HANDSHAKE_TIMEOUT']);

    // A client that does complete its handshake is not affected by the timer.
    const ws = await wsClient(s.host.addresses()[0]!.url);
    await new Promise((r) => setTimeout(r, 300)); // outlive the handshake timeout: the point of this check
    ws.send('ok');
    assert.equal(await ws.inbox.next(), 'len:2');
    ws.ws.close();
  } finally {
    await s.close();
  }
});
