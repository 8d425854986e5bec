/**
 * A plain TCP client that closes while its connection is paused (its queue reached maxQueuedMessages: backpressure).
 * Node does not emit 'end' for a paused socket while bytes wait in its read buffer, so the close was seen only once
 * the plugin had worked the queue down and reading resumed: the closed client kept its slot, and the plugin handled
 * what it had sent. Issue 9 item 4: a closed connection's queued messages are dropped and counted, not handled.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { createHost } from '../../src/index.js';
import { tcpClient } from '../helpers/clients.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';
import { until } from '../helpers/until.js';

// 'hold' keeps its handler in flight until some connection sends 'open': the held connection's queue cannot move.
const GATE = `
import { definePlugin } from 'hotline';
let release: (() => void) | undefined;
const seen: string[] = [];
export default definePlugin({
  name: 'gate', version: '1', api: 1,
  onMessage(conn, data) {
    if (data === 'open') { release?.(); conn.send('opened'); return; }
    if (data === 'seen') { conn.send(seen.join(',')); return; }
    if (typeof data === 'string' && data[0] === 'b') seen.push(data);
    if (data === 'hold') { conn.send('held'); return new Promise<void>((r) => { release = r; }); }
  },
});
`;

test('a paused TCP connection whose client closes: its queue is dropped and counted at once, its slot freed', async () => {
  const p = pluginDir(GATE);
  const host = await createHost({
    plugin: p.entry,
    logger: quietLogger,
    listen: [{ transport: 'tcp', framing: 'lines' }],
    limits: { maxQueuedMessages: 10 },
    hangTimeout: 60_000,
    shutdownTimeout: 1_000,
  });
  const port = host.addresses()[0]!.port;
  try {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.once('connect', resolve));
    const held = new Promise<void>((resolve) => socket.once('data', () => resolve()));
    const line = 'x'.repeat(29) + '\n';
    // Part one: the handler of 'hold' stays in flight, and the 199 lines behind it pause the connection.
    socket.write('hold\n' + line.repeat(199));
    await held;
    await until(() => host.status().messages.in === 200, 'part one received');
    // Part two (9 KB: less than the transport reads on while paused) arrives while the connection is paused, then the
    // client closes.
    socket.end(line.repeat(300));
    await until(() => host.status().messages.dropped === 499, 'the queue dropped at close', 10_000);
    assert.equal(host.status().messages.in, 500);
    // The handler in flight settles; the close event runs, and the closed connection leaves.
    const opener = await tcpClient(port);
    opener.send('open');
    assert.equal(await opener.inbox.next(), 'opened');
    await until(() => host.status().connections === 1, 'the closed client to free its slot');
    opener.socket.end();
  } finally {
    await host.close();
    p.remove();
  }
});

test('what a paused TCP connection read on is what a process upgrade hands over, in order, and is not dispatched', async () => {
  const p = pluginDir(GATE);
  const host = await createHost({
    plugin: p.entry,
    logger: quietLogger,
    listen: [{ transport: 'tcp', framing: 'lines' }],
    limits: { maxQueuedMessages: 10 },
    hangTimeout: 60_000,
    shutdownTimeout: 1_000,
  });
  const port = host.addresses()[0]!.port;
  const opener = await tcpClient(port);
  try {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.once('connect', resolve));
    const held = new Promise<void>((resolve) => socket.once('data', () => resolve()));
    socket.write('hold\n' + 'a\n'.repeat(50));
    await held;
    await until(() => host.status().messages.in === 51, 'part one received');
    const conn = [...host.handoffPort().dispatcher.connections.values()].find((c) => c.queued > 0)!;
    const source = conn.link.handoff!();
    assert.equal(source.kind, 'tcp');
    if (source.kind !== 'tcp') return;
    // Read on while paused, ending inside a line: the partial line belongs to the handover too.
    const tail = Array.from({ length: 100 }, (_, i) => `b${i}\n`).join('') + 'partial';
    socket.write(tail);
    await until(() => source.unconsumed().length === tail.length, 'the tail read while paused');
    assert.equal(source.unconsumed().toString(), tail);
    assert.equal(host.status().messages.in, 51, 'nothing read while paused is dispatched');
    // Resumed (the gate opens, the queue drains): the held lines are decoded in order, the partial one stays pending.
    opener.send('open');
    await until(() => host.status().messages.in === 52 + 100, 'the held lines dispatched after resume');
    assert.equal(source.unconsumed().toString(), 'partial');
    await opener.inbox.waitFor(1);
    opener.send('seen');
    await opener.inbox.waitFor(2);
    assert.deepEqual(opener.inbox.messages, ['opened', Array.from({ length: 100 }, (_, i) => `b${i}`).join(',')]);
    socket.destroy();
  } finally {
    opener.socket.end();
    await host.close();
    p.remove();
  }
});
