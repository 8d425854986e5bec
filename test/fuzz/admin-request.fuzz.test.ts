/**
 * Fuzz of the admin socket protocol (src/admin/protocol.ts, admin-connection.ts): any line gives a request with
 * exactly a valid id and a known command, or a HOTLINE_E_ADMIN_REQUEST error, never a throw; and a connection's
 * replies do not depend on how its byte stream is split into reads (long lines included).
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { test } from 'node:test';
import fc from 'fast-check';
import { AdminConnection } from '../../src/admin/admin-connection.js';
import { ADMIN_COMMANDS, MAX_ADMIN_LINE, parseAdminRequest } from '../../src/admin/protocol.js';
import { cuts, fuzzParams, splitAt, totalOrCoded } from './fuzz.js';

const key = fc.constantFrom('id', 'cmd', '__proto__', 'constructor', 'toString', 'trigger', 'ID', '');
const value = fc.oneof(
  fc.constantFrom(null, 0, 1, -1, 1.5, 2 ** 53, '1', 'status', 'reload', 'rollback', 'upgrade', 'nope', 'Status', true),
  fc.jsonValue({ maxDepth: 2 }),
);
const requestLike = fc.array(fc.tuple(key, value), { maxLength: 4 }).map((kv) => `{${kv.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v) ?? 'null'}`).join(',')}}`);
const line = fc.oneof(requestLike, fc.json({ maxDepth: 3 }), fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 30 }));

test('parseAdminRequest: any line gives a well-formed request or a HOTLINE_E_ADMIN_REQUEST error, never a throw', { timeout: 60_000 }, () => {
  fc.assert(
    fc.property(line, (l) => {
      const r = totalOrCoded('HOTLINE_E_ADMIN_REQUEST', () => parseAdminRequest(l));
      if ('error' in r) {
        assert.equal(r.error.code, 'HOTLINE_E_ADMIN_REQUEST');
        assert.ok(Number.isSafeInteger(r.id) && r.id >= 0);
        return;
      }
      assert.ok(!(r instanceof Error));
      assert.deepEqual(Object.keys(r).sort(), ['cmd', 'id']);
      assert.ok(Number.isSafeInteger(r.id) && r.id >= 0);
      assert.ok(ADMIN_COMMANDS.has(r.cmd));
    }),
    fuzzParams('admin request lines'),
  );
});

/** Just enough of a socket for AdminConnection: it records what is written. */
class FakeSocket extends EventEmitter {
  written: string[] = [];
  destroyed = false;
  writableNeedDrain = false;
  #paused = false;
  setEncoding(): this {
    return this;
  }
  write(s: string): boolean {
    this.written.push(s);
    return true;
  }
  pause(): this {
    this.#paused = true;
    return this;
  }
  resume(): this {
    this.#paused = false;
    return this;
  }
  isPaused(): boolean {
    return this.#paused;
  }
}

async function replies(parts: string[]): Promise<string[]> {
  const socket = new FakeSocket();
  let n = 0;
  const conn = new AdminConnection(socket as unknown as net.Socket, async (cmd) => ({ cmd, n: ++n }));
  for (const p of parts) socket.emit('data', p);
  // Every answer is a few microtask hops: a bounded number of turns drains them all, or the case fails as a hang.
  for (let i = 0; i < 10_000 && conn.busy; i++) await Promise.resolve();
  assert.equal(conn.busy, false, 'every request is answered');
  return socket.written;
}

// The parser's coverage is the test above; this one is about the splitting, so its lines are cheap to make.
const streamLine = fc.oneof(
  { arbitrary: fc.constantFrom('null', '{"id":1}', '{"id":2,"cmd":"nope"}', '', ' ', '{', '\r'), weight: 4 },
  { arbitrary: fc.string({ maxLength: 12 }), weight: 2 },
  { arbitrary: fc.nat().map((id) => JSON.stringify({ id, cmd: 'status' })), weight: 3 },
  { arbitrary: fc.constant('y'.repeat(MAX_ADMIN_LINE + 3)), weight: 1 },
);

test('AdminConnection: the replies to a stream of lines do not depend on how it is split into reads', { timeout: 60_000 }, async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(streamLine.map((l) => l.replace(/\n/g, ' ')), { maxLength: 5 }), fc.boolean(), cuts, async (ls, trailing, c) => {
      const stream = Buffer.from(ls.join('\n') + (trailing ? '\n' : ''), 'latin1').toString('latin1');
      const whole = await replies([stream]);
      const split = await replies(splitAt(Buffer.from(stream, 'latin1'), c).map((b) => b.toString('latin1')));
      assert.deepEqual(split, whole);
      for (const r of whole) assert.equal(typeof (JSON.parse(r) as { ok: unknown }).ok, 'boolean');
    }),
    fuzzParams('admin connection splits'),
  );
});
