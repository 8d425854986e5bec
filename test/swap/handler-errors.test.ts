/**
 * A handler that throws or rejects is an error of its version: counted per version, logged with its code, and never
 * fatal to the host or to the client's connection.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import pino from 'pino';
import { createHost, type HotlineError } from '../../src/index.js';
import { tcpClient, wsClient } from '../helpers/clients.js';
import { pluginDir } from '../helpers/plugin-dir.js';

const FAULTY = `
import { definePlugin } from 'hotline';
export default definePlugin<{ n: number }>({
  name: 'faulty', version: 'f1', api: 1,
  init: () => ({ n: 0 }),
  onMessage(conn, data, ctx) {
    ctx.state.n++;
    if (data === 'throw') throw new Error('sync boom');
    if (data === 'reject') return Promise.reject(new Error('async boom'));
    if (data === 'timer') { setTimeout(() => { throw new Error('timer boom'); }, 1); conn.send('armed'); return; }
    conn.send('ok:' + ctx.state.n);
  },
});
`;

/** A pino logger whose JSON lines the test can read. */
function capturingLogger(): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

test('a throwing or rejecting handler is counted per version and logged; host and connection survive', async () => {
  const p = pluginDir(FAULTY);
  const { logger, lines } = capturingLogger();
  const host = await createHost({ plugin: p.entry, listen: [{ transport: 'ws' }, { transport: 'tcp' }], logger, probation: false });
  const events: Array<{ err: HotlineError; conn: string | undefined }> = [];
  host.on('handler-error', (err, _v, conn) => events.push({ err, conn }));
  try {
    const [wsAddr, tcpAddr] = host.addresses();
    const ws = await wsClient(wsAddr!.url);
    const tcp = await tcpClient(tcpAddr!.port);
    ws.send('throw');
    ws.send('reject');
    ws.send('a');
    assert.equal(await ws.inbox.next(), 'ok:3', 'the connection carries on after its handler failed');
    tcp.send('throw');
    tcp.send('b');
    assert.equal(await tcp.inbox.next(), 'ok:5');
    ws.send('timer');
    assert.equal(await ws.inbox.next(), 'armed');
    // The timer's throw is reported asynchronously: wait for its event, bounded.
    for (let i = 0; i < 200 && events.length < 4; i++) await new Promise((r) => setTimeout(r, 5));

    assert.equal(events.length, 4);
    assert.ok(events.every((e) => e.err.code === 'HOTLINE_E_HANDLER'));
    assert.deepEqual(
      events.map((e) => /sync boom|async boom|timer boom/.exec(e.err.message)?.[0]),
      ['sync boom', 'async boom', 'sync boom', 'timer boom'],
    );
    assert.ok(events[0]!.conn, 'the failing connection is named');

    const status = host.status();
    const v = status.versions.at(-1)!;
    assert.equal(v.errors, 4);
    assert.equal(v.lastError?.code, 'HOTLINE_E_HANDLER');
    assert.equal(status.connections, 2);
    assert.equal(host.state, 'running');

    const logged = lines.filter((l) => l.code === 'HOTLINE_E_HANDLER');
    assert.equal(logged.length, 4);
    assert.ok(logged.every((l) => l.level === 50 && l.seq === v.seq));

    // A new version starts with a clean count; the old one keeps its own.
    p.write(FAULTY.replace("version: 'f1'", "version: 'f2'"));
    await host.reload();
    ws.send('c');
    assert.equal(await ws.inbox.next(), 'ok:7');
    const after = host.status().versions;
    assert.deepEqual(after.map((s) => [s.version, s.errors]), [['f1', 4], ['f2', 0]]);
    ws.ws.close();
    tcp.socket.end();
  } finally {
    await host.close();
    p.remove();
  }
});
