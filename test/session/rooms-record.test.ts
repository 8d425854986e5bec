/**
 * When a session's rooms reach its record (issue 13): a join or leave inside a handler is stored with what that
 * handler stores; one outside any handler of the connection (a timer here) is stored at once, with no message after
 * it; the leaving of every room at the end of the session is not written (the record is deleted).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect } from '../../src/client/index.js';
import { createHost, MemorySessionStore } from '../../src/index.js';
import type { SessionRecord } from '../../src/session/store.js';
import { pluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';
import { until } from '../helpers/until.js';

const PLUGIN = `
import { definePlugin } from 'hotline';
export default definePlugin({
  name: 'later', version: '1', api: 1,
  onMessage(conn, data, ctx) {
    const [cmd, room] = String(data).split(':');
    if (cmd === 'join') conn.send('joined:' + conn.join(room));
    else if (cmd === 'leave') conn.send('left:' + conn.leave(room));
    // Out of the handler: the timer's join runs when no event of this connection is being handled.
    else if (cmd === 'later') { ctx.setTimeout(() => conn.join(room), 20); conn.send('ok'); }
  },
});
`;

test('rooms reach the record at each join and leave, in a handler or out of one; not rewritten when the session ends', async () => {
  const p = pluginDir(PLUGIN);
  const store = new MemorySessionStore();
  const writes: Array<string[] | undefined> = [];
  const write = store.write.bind(store);
  store.write = (id, change) => {
    if (change.rooms) writes.push(change.rooms);
    write(id, change);
  };
  const host = await createHost({ plugin: p.entry, listen: [{ transport: 'ws', port: 0 }], sessions: { store }, logger: quietLogger });
  const client = connect(`ws://127.0.0.1:${host.addresses()[0]!.port}/`);
  const got: string[] = [];
  client.on('message', (d) => got.push(String(d)));
  const record = (): SessionRecord | undefined => [...store.values()][0];
  const ask = async (cmd: string, n: number) => {
    client.send(cmd);
    await until(() => got.length >= n, `the reply to ${cmd}`);
  };
  try {
    await ask('join:a', 1);
    await ask('join:b', 2);
    assert.deepEqual(record()?.rooms, ['a', 'b']);
    await ask('join:b', 3);
    await ask('leave:a', 4);
    assert.deepEqual(record()?.rooms, ['b']);
    await ask('later:c', 5);
    await until(() => record()?.rooms?.length === 2, 'the timer join stored with no message after it');
    assert.deepEqual(record()?.rooms, ['b', 'c']);
    assert.deepEqual(writes, [['a'], ['a', 'b'], ['b'], ['b', 'c']], 'one write per change, none for a join that changed nothing');
    client.close();
    await until(() => store.size === 0, 'the ended session deleted');
    assert.equal(writes.length, 4, 'the leaving of every room at close is not written');
  } finally {
    client.close();
    await host.close();
    p.remove();
  }
});
