/**
 * Regression test for the ws private internals the handoff relies on (websockets/ws#823, ws pinned at 8.18.3):
 * frames split at random byte offsets, fragmented messages and pings interleaved, and the WebSocket moved (captured
 * and rebuilt on its socket) after random chunks. Every message must arrive once, whole, in order.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { type WebSocket, WebSocketServer } from 'ws';
import { captureWs, feedReceiver, rebuildWs } from '../../src/handoff/ws-frames.js';

function mask(opcode: number, fin: boolean, payload: Buffer): Buffer {
  const key = randomBytes(4);
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0, 0x80 | len]) : len < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  head[0] = (fin ? 0x80 : 0) | opcode;
  if (len >= 126 && len < 65536) {
    head[1] = 0x80 | 126;
    head.writeUInt16BE(len, 2);
  } else if (len >= 65536) {
    head[1] = 0x80 | 127;
    head.writeUInt32BE(0, 2);
    head.writeUInt32BE(len, 6);
  }
  const body = Buffer.from(payload.map((b, i) => b ^ key[i % 4]!));
  return Buffer.concat([head, key, body]);
}

test('a WebSocket moved at random byte offsets delivers every message once, in order', async () => {
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 1 << 20 });
  const server = http.createServer();
  const received: string[] = [];
  let serverSocket: net.Socket | undefined;
  let bytesIn = 0;
  let current: WebSocket | undefined;
  const wire = (ws: WebSocket) => {
    current = ws;
    ws.on('message', (d) => received.push(String(d)));
  };
  server.on('upgrade', (req, socket, head) => {
    serverSocket = socket as net.Socket;
    socket.on('data', (c: Buffer) => (bytesIn += c.length));
    wss.handleUpgrade(req, socket, head, wire);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const client = net.connect(port, '127.0.0.1');
  await new Promise((resolve) => client.once('connect', resolve));
  client.write(`GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  await new Promise<void>((resolve) => {
    let buf = '';
    const onData = (c: Buffer) => {
      buf += c.toString('latin1');
      if (!buf.includes('\r\n\r\n')) return;
      client.off('data', onData);
      resolve();
    };
    client.on('data', onData);
  });
  const headerBytes = bytesIn;

  // The stream: 300 messages, some fragmented in 3 parts with a ping between, sizes across the 7/16/64-bit forms.
  const expected: string[] = [];
  const frames: Buffer[] = [];
  for (let i = 0; i < 300; i++) {
    const size = [5, 200, 70_000][i % 3]!;
    const text = `m${i}:` + 'x'.repeat(size);
    expected.push(text);
    const buf = Buffer.from(text);
    if (i % 4 === 0) {
      const a = Math.floor(buf.length / 3);
      frames.push(mask(1, false, buf.subarray(0, a)), mask(9, true, Buffer.from('p')), mask(0, false, buf.subarray(a, 2 * a)), mask(0, true, buf.subarray(2 * a)));
    } else {
      frames.push(mask(1, true, buf));
    }
  }
  const stream = Buffer.concat(frames);
  let moves = 0;
  let offset = 0;
  while (offset < stream.length) {
    const n = 1 + Math.floor(Math.random() * 3000);
    const chunk = stream.subarray(offset, offset + n);
    offset += chunk.length;
    client.write(chunk);
    // Wait until the server has read exactly up to here, so the Receiver stops wherever the chunk ended.
    for (let i = 0; i < 2000 && bytesIn - headerBytes < offset; i++) await new Promise((resolve) => setImmediate(resolve));
    if (Math.random() < 0.3) {
      const old = current!;
      old.pause();
      const c = captureWs(old);
      assert.ok('socket' in c, `capturable: ${JSON.stringify(c)}`);
      const socket = serverSocket!;
      socket.removeAllListeners();
      socket.on('data', (d: Buffer) => (bytesIn += d.length));
      const ws = rebuildWs(socket, Buffer.alloc(0), c.protocol, wss.options as Record<string, unknown>);
      wire(ws);
      if (c.head.length > 0) feedReceiver(ws, c.head);
      socket.resume();
      moves++;
    }
  }
  for (let i = 0; i < 4000 && received.length < expected.length; i++) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.ok(moves > 10, `moved ${moves} times`);
  assert.equal(received.length, expected.length);
  assert.deepEqual(received, expected);
  client.destroy();
  server.close();
});
