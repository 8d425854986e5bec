/**
 * The `npm start` demo, end to end: the chat example (copied to a temp dir, so the repository is never edited) on a
 * watching host, two real WebSocket clients, an edit of format.ts, and the promise the README makes: both clients see
 * the new format, the history and the nicknames survive, and nobody is disconnected.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createHost } from '../../src/index.js';
import type { Line } from '../../examples/chat/plugin.js';
import { type WsClient, wsClient } from '../helpers/clients.js';
import { quietLogger } from '../helpers/quiet-logger.js';

const EXAMPLE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../examples/chat');

type ServerMessage =
  | { type: 'hello'; you: string; version: string; generation: number; online: number; history: Line[] }
  | { type: 'line'; line: Line }
  | { type: 'nick'; you: string };

/** Wait until the client has received a message `match` accepts, and return it. Bounded by the inbox timeout. */
async function receive<T extends ServerMessage>(c: WsClient, match: (m: ServerMessage) => m is T): Promise<T>;
async function receive(c: WsClient, match: (m: ServerMessage) => boolean): Promise<ServerMessage>;
async function receive(c: WsClient, match: (m: ServerMessage) => boolean): Promise<ServerMessage> {
  for (let i = 0; ; i++) {
    if (i >= c.inbox.messages.length) await c.inbox.waitFor(i + 1, 15_000);
    const m = JSON.parse(c.inbox.messages[i]!) as ServerMessage;
    if (match(m)) return m;
  }
}

const isHello = (m: ServerMessage): m is Extract<ServerMessage, { type: 'hello' }> => m.type === 'hello';
const lineWith = (text: string) => (m: ServerMessage) => m.type === 'line' && m.line.text === text;

test('chat example: an edit of format.ts reaches both clients, history and nicknames intact, no close', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'hotline-chat-'));
  cpSync(path.join(EXAMPLE, 'plugin.ts'), path.join(dir, 'plugin.ts'));
  cpSync(path.join(EXAMPLE, 'format.ts'), path.join(dir, 'format.ts'));
  const host = await createHost({ plugin: path.join(dir, 'plugin.ts'), watch: true, logger: quietLogger });
  const clients: WsClient[] = [];
  try {
    const url = host.addresses()[0]!.url;
    const alice = await wsClient(url);
    clients.push(alice);
    const bob = await wsClient(url);
    clients.push(bob);
    let closes = 0;
    for (const c of clients) void c.closed.then(() => closes++);

    assert.equal((await receive(alice, isHello)).generation, 1);
    alice.send(JSON.stringify({ type: 'nick', nick: 'alice' }));
    alice.send(JSON.stringify({ type: 'say', text: 'before the edit' }));
    const before = await receive(bob, lineWith('before the edit'));
    assert.equal(before.type === 'line' && before.line.nick, 'alice');

    // Edit a file the entry imports (not the entry itself): the watcher follows the whole import graph.
    const swapped = new Promise<void>((resolve, reject) => {
      host.once('swap', () => resolve());
      host.once('swap-error', reject);
    });
    const format = path.join(dir, 'format.ts');
    const source = readFileSync(format, 'utf8');
    const edited = source.replace('return text;', 'return `[new] ${text.toUpperCase()}`;');
    assert.notEqual(edited, source, 'format.ts no longer has the line this test edits');
    writeFileSync(format, edited);
    await swapped;

    alice.send(JSON.stringify({ type: 'say', text: 'after the edit' }));
    for (const c of [alice, bob]) {
      const after = await receive(c, lineWith('[new] AFTER THE EDIT'));
      assert.ok(after.type === 'line');
      assert.equal(after.line.nick, 'alice', 'the nickname in conn.state survived the swap');
      assert.equal(after.line.generation, 2);
    }

    // A newcomer gets the history written by both versions, each line in the format of the code that wrote it.
    const carol = await wsClient(url);
    clients.push(carol);
    const hello = await receive(carol, isHello);
    const said = hello.history.filter((l) => l.nick !== undefined).map((l) => `${l.nick}: ${l.text} (gen ${l.generation})`);
    assert.deepEqual(said, ['alice: before the edit (gen 1)', 'alice: [new] AFTER THE EDIT (gen 2)']);
    assert.equal(hello.generation, 2);

    assert.equal(closes, 0, 'no client was disconnected by the swap');
    assert.equal(host.status().connections, 3);
  } finally {
    for (const c of clients) c.ws.close();
    await host.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
