/**
 * Durable global state (issue 11), in process with real files: a checkpoint at every swap that a new host on the
 * folder starts from through migrate; a corrupt or hostile checkpoint refused with a code while the host starts
 * fresh; a state that cannot be serialised (or is too large) reported with a code while the host keeps serving; a
 * migrate that refuses the checkpoint, and a checkpoint whose restores died twice, set aside.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import v8 from 'node:v8';
import { createHost, type Host } from '../../src/index.js';
import { CHECKPOINT_FILE, decodeCheckpoint, encodeCheckpoint, sha256 } from '../../src/state/checkpoint-file.js';
import type { CheckpointStatus } from '../../src/state/checkpointer.js';
import { wsClient } from '../helpers/clients.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';
import { until } from '../helpers/until.js';

/**
 * Counts messages in its global state; `fn` puts a function in it (not serialisable), `big` a 64 KiB string, `fix`
 * takes both out. migrate records where its state came from, so a reply shows it.
 */
function plugin(tag: string, migrate = 'return { ...(prev.state as object), from: prev.version, restoredAt: prev.restoredAt };'): string {
  return `
import { definePlugin } from 'hotline';
export default definePlugin<any, unknown>({
  name: 'ckpt', version: '${tag}', api: 1,
  init: () => ({ total: 0 }),
  migrate(prev) { ${migrate} },
  onMessage(conn, data, ctx) {
    if (data === 'fn') ctx.state.fn = () => 1;
    else if (data === 'big') ctx.state.big = 'x'.repeat(65536);
    else if (data === 'fix') { delete ctx.state.fn; delete ctx.state.big; }
    else ctx.state.total++;
    conn.send('${tag}:' + ctx.state.total + ':' + (ctx.state.from ?? '-') + ':' + (typeof ctx.state.restoredAt));
  },
});
`;
}

function checkpointOf(host: Host): CheckpointStatus {
  return host.status().checkpoint!;
}

function onDisk(dir: string): { version: string; state: Record<string, unknown> } {
  const { header, state } = decodeCheckpoint(readFileSync(path.join(dir, CHECKPOINT_FILE)), 1 << 20);
  return { version: header.version, state: state as Record<string, unknown> };
}

test('a checkpoint at every swap; a new host on the folder starts from it through migrate (prev.restoredAt set)', async () => {
  const p = pluginDir(plugin('v1'));
  const dir = path.join(p.dir, 'state');
  let host = await createHost({ plugin: p.entry, logger: quietLogger, state: { dir, interval: 0 } });
  try {
    assert.equal(checkpointOf(host).last?.trigger, 'swap', 'the first load is checkpointed too');
    const c = await wsClient(host.addresses()[0]!.url);
    for (let i = 1; i <= 3; i++) {
      c.send('m');
      assert.equal(await c.inbox.next(), `v1:${i}:-:undefined`);
    }
    p.write(plugin('v2'));
    await host.reload();
    const disk = onDisk(dir);
    assert.equal(disk.version, 'v2', 'written at the swap, with the new version');
    assert.equal(disk.state.total, 3);
    assert.equal(disk.state.from, 'v1');
    assert.equal(checkpointOf(host).writes, 2);
    c.ws.close();
    await host.close();

    host = await createHost({ plugin: p.entry, logger: quietLogger, state: { dir, interval: 0 } });
    const restore = checkpointOf(host).restore;
    assert.ok(restore && 'version' in restore && restore.version === 'v2', JSON.stringify(restore));
    const d = await wsClient(host.addresses()[0]!.url);
    d.send('m');
    assert.equal(await d.inbox.next(), 'v2:4:v2:number', 'counted on from the checkpoint, through migrate');
    d.ws.close();
  } finally {
    await host.close();
    p.remove();
  }
});

test('a corrupt or hostile checkpoint is refused with HOTLINE_E_STATE_CORRUPT; the host starts fresh and set it aside', async () => {
  const p = pluginDir(plugin('v1'));
  const dir = path.join(p.dir, 'state');
  const good = encodeCheckpoint({ plugin: 'ckpt', version: 'v0', hash: 'h', at: 1 }, v8.serialize({ total: 41 }));
  const bads: Array<[string, Buffer]> = [
    ['garbage', Buffer.from('not a checkpoint at all')],
    ['truncated', good.subarray(0, good.length - 3)],
    ['one bit flipped', Buffer.from(good.map((b, i) => (i === good.length - 2 ? b ^ 1 : b)))],
    ['another plugin', encodeCheckpoint({ plugin: 'other', version: 'v0', hash: 'h', at: 1 }, v8.serialize({ total: 41 }))],
    // Refused by its size, before it is read: maxBytes is 1 KiB here.
    ['oversized', Buffer.concat([good, Buffer.alloc(16 * 1024)])],
  ];
  try {
    for (const [what, bytes] of bads) {
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, CHECKPOINT_FILE), bytes);
      const host = await createHost({ plugin: p.entry, logger: quietLogger, state: { dir, interval: 0, maxBytes: 1024 } });
      try {
        const restore = checkpointOf(host).restore;
        assert.ok(restore && 'code' in restore && restore.code === 'HOTLINE_E_STATE_CORRUPT', `${what}: ${JSON.stringify(restore)}`);
        if (what === 'oversized') assert.match((restore as { message: string }).message, /bytes, over state\.maxBytes/, 'judged by its size');
        assert.ok(existsSync(path.join(dir, 'state.ckpt.corrupt')), `${what}: kept aside`);
        const c = await wsClient(host.addresses()[0]!.url);
        c.send('m');
        assert.equal(await c.inbox.next(), 'v1:1:-:undefined', `${what}: serving, from init()`);
        c.ws.close();
        assert.equal(onDisk(dir).version, 'v1', `${what}: a good checkpoint replaced it`);
      } finally {
        await host.close();
      }
    }
  } finally {
    p.remove();
  }
});

test('decodeCheckpoint refuses hostile headers before v8 sees the payload', () => {
  const payload = v8.serialize({ a: 1 });
  const withHeader = (h: object, body: Buffer = payload) => {
    const hb = Buffer.from(JSON.stringify(h));
    const pre = Buffer.alloc(12);
    Buffer.from('HLCKPT1\n').copy(pre);
    pre.writeUInt32BE(hb.length, 8);
    return Buffer.concat([pre, hb, body]);
  };
  const ok = { plugin: 'p', version: 'v', hash: 'h', at: 1, bytes: payload.length, sha256: sha256(payload) };
  assert.deepEqual(decodeCheckpoint(withHeader(ok), 1024).state, { a: 1 });
  const cases: Array<[string, Buffer]> = [
    ['header length past the end', Buffer.concat([Buffer.from('HLCKPT1\n'), Buffer.from([0, 0, 0xff, 0xff])])],
    ['header not JSON', withHeader({}).fill(0x7b, 12, 14)],
    ['header an array', withHeader([1, 2])],
    ['__proto__ instead of fields', withHeader(JSON.parse('{"__proto__":{"plugin":"p"}}') as object)],
    ['bytes over maxBytes', withHeader({ ...ok, bytes: 1e12 })],
    ['bytes negative', withHeader({ ...ok, bytes: -1 })],
    ['plugin name too long', withHeader({ ...ok, plugin: 'x'.repeat(300) })],
    ['sha256 not hex', withHeader({ ...ok, sha256: 'z'.repeat(64) })],
    ['payload of another length', withHeader({ ...ok, bytes: payload.length + 1 })],
  ];
  for (const [what, bytes] of cases) {
    assert.throws(() => decodeCheckpoint(bytes, 1024), { code: 'HOTLINE_E_STATE_CORRUPT' }, what);
  }
  // A checksum-valid payload that v8 cannot read: refused, not thrown raw.
  const junk = Buffer.from([0xff, 0x0f, 0x6f, 0x22, 0x01]);
  assert.throws(() => decodeCheckpoint(withHeader({ ...ok, bytes: junk.length, sha256: sha256(junk) }, junk), 1024), { code: 'HOTLINE_E_STATE_CORRUPT' });
});

test('a state that cannot be serialised, or is too large: a coded error, the host keeps serving, the last good checkpoint stands', async () => {
  const p = pluginDir(plugin('v1'));
  const dir = path.join(p.dir, 'state');
  const host = await createHost({ plugin: p.entry, logger: quietLogger, state: { dir, interval: 20, maxBytes: 32 * 1024 } });
  try {
    const c = await wsClient(host.addresses()[0]!.url);
    c.send('m');
    assert.equal(await c.inbox.next(), 'v1:1:-:undefined');
    await until(() => onDisk(dir).state.total === 1, 'the change checkpointed');
    c.send('fn');
    await c.inbox.next();
    await until(() => checkpointOf(host).lastError?.code === 'HOTLINE_E_STATE_SERIALIZE', 'HOTLINE_E_STATE_SERIALIZE');
    c.send('m');
    assert.equal(await c.inbox.next(), 'v1:2:-:undefined', 'still serving');
    assert.equal(onDisk(dir).state.total, 1, 'the last good checkpoint stands');
    c.send('fix');
    await c.inbox.next();
    await until(() => onDisk(dir).state.total === 2, 'written again once serialisable');
    const writes = checkpointOf(host).writes;
    await until(() => checkpointOf(host).unchanged >= 1, 'a tick that found nothing changed');
    assert.equal(checkpointOf(host).writes, writes, 'and wrote nothing');
    c.send('big');
    await c.inbox.next();
    await until(() => checkpointOf(host).lastError?.code === 'HOTLINE_E_STATE_TOO_LARGE', 'HOTLINE_E_STATE_TOO_LARGE');
    c.send('m');
    assert.equal(await c.inbox.next(), 'v1:3:-:undefined', 'still serving');
    assert.ok(statSync(path.join(dir, CHECKPOINT_FILE)).size < 32 * 1024);
    const s = checkpointOf(host);
    assert.ok(s.failures >= 2, JSON.stringify(s));
    c.ws.close();
  } finally {
    await host.close();
    p.remove();
  }
});

test('a migrate that refuses the checkpoint, or a checkpoint whose restores died twice: HOTLINE_E_STATE_RESTORE, started from init()', async () => {
  const p = pluginDir(plugin('v1', 'throw new Error("not this shape");'));
  const dir = path.join(p.dir, 'state');
  mkdirSync(dir, { recursive: true });
  const payload = v8.serialize({ total: 41 });
  writeFileSync(path.join(dir, CHECKPOINT_FILE), encodeCheckpoint({ plugin: 'ckpt', version: 'v0', hash: 'h', at: 1 }, payload));
  let host = await createHost({ plugin: p.entry, logger: quietLogger, state: { dir, interval: 0 } });
  try {
    const restore = checkpointOf(host).restore;
    assert.ok(restore && 'code' in restore && restore.code === 'HOTLINE_E_STATE_RESTORE', JSON.stringify(restore));
    assert.deepEqual(decodeCheckpoint(readFileSync(path.join(dir, 'state.ckpt.corrupt')), 1 << 20).state, { total: 41 }, 'the refused checkpoint is kept aside');
    assert.equal(onDisk(dir).version, 'v1', 'and init()’s state written in its place');
    const c = await wsClient(host.addresses()[0]!.url);
    c.send('m');
    assert.equal(await c.inbox.next(), 'v1:1:-:undefined');
    c.ws.close();
    await host.close();

    // Two workers died inside the restore's migrate (the watchdog killed them): the third start sets it aside.
    p.write(plugin('v1'));
    writeFileSync(path.join(dir, CHECKPOINT_FILE), encodeCheckpoint({ plugin: 'ckpt', version: 'v0', hash: 'h', at: 1 }, payload));
    writeFileSync(path.join(dir, 'restoring'), JSON.stringify({ sha256: sha256(payload), attempts: 2 }));
    host = await createHost({ plugin: p.entry, logger: quietLogger, state: { dir, interval: 0 } });
    const again = checkpointOf(host).restore;
    assert.ok(again && 'code' in again && again.code === 'HOTLINE_E_STATE_RESTORE', JSON.stringify(again));
    assert.ok(!existsSync(path.join(dir, 'restoring')), 'the marker is cleared');
  } finally {
    await host.close();
    p.remove();
  }
});
