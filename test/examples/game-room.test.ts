/**
 * The game-room example over TCP lines: players move on a server-side clock, the rules file is edited mid-game, and
 * the room goes on under the new rules with positions, ticks and connections intact, and the old clock stopped.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createHost } from '../../src/index.js';
import { type TcpClient, tcpClient } from '../helpers/clients.js';
import { quietLogger } from '../helpers/quiet-logger.js';

const EXAMPLE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../examples/game-room');

interface Snapshot {
  t: 'state';
  tick: number;
  rules: string;
  players: Array<{ name: string; x: number; y: number }>;
}

/** Messages of `c` from index `from` on, parsed, waiting until `match` accepts one; returns its index. */
async function waitFor(c: TcpClient, from: number, match: (m: Snapshot) => boolean): Promise<number> {
  for (let i = from; ; i++) {
    if (i >= c.inbox.messages.length) await c.inbox.waitFor(i + 1, 15_000);
    const m = JSON.parse(c.inbox.messages[i]!) as Snapshot;
    if (m.t === 'state' && match(m)) return i;
  }
}

const snapshots = (c: TcpClient) =>
  c.inbox.messages.map((m) => JSON.parse(m) as Snapshot | { t: 'welcome' }).filter((m): m is Snapshot => m.t === 'state');
const xOf = (s: Snapshot, name: string) => s.players.find((p) => p.name === name)?.x;

test('game-room example: a rules edit mid-game keeps positions, ticks and players; the old clock stops', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'hotline-game-'));
  cpSync(path.join(EXAMPLE, 'plugin.ts'), path.join(dir, 'plugin.ts'));
  cpSync(path.join(EXAMPLE, 'rules.ts'), path.join(dir, 'rules.ts'));
  const host = await createHost({
    plugin: path.join(dir, 'plugin.ts'),
    listen: [{ transport: 'tcp', framing: 'lines' }],
    probation: false,
    logger: quietLogger,
  });
  const clients: TcpClient[] = [];
  try {
    const port = host.addresses()[0]!.port;
    const ada = await tcpClient(port);
    clients.push(ada);
    const bob = await tcpClient(port);
    clients.push(bob);
    let closes = 0;
    for (const c of clients) void c.closed.then(() => closes++);

    ada.send('name ada');
    ada.send('d');
    const moving = await waitFor(bob, 0, (s) => (xOf(s, 'ada') ?? 0) >= 2);

    const rules = path.join(dir, 'rules.ts');
    const source = readFileSync(rules, 'utf8');
    const edited = source.replace("RULES = 'classic-1'", "RULES = 'fast-2'").replace('SPEED = 1;', 'SPEED = 3;');
    assert.notEqual(edited, source);
    writeFileSync(rules, edited);
    const record = await host.reload();
    assert.equal(record.outcome, 'switched');

    // Two new-rules snapshots in a row: ada moves 3 cells a tick from where she was, the clock goes on counting.
    const first = await waitFor(bob, moving, (s) => s.rules === 'fast-2');
    await waitFor(bob, first + 1, (s) => s.rules === 'fast-2');
    const all = snapshots(bob);
    const firstFast = all.findIndex((s) => s.rules === 'fast-2');
    const before = all[firstFast - 1]!;
    const after = all[firstFast]!;
    const next = all[firstFast + 1]!;
    assert.equal(before.rules, 'classic-1');
    assert.ok(after.tick > before.tick, `the tick went on (${before.tick} → ${after.tick})`);
    assert.ok(xOf(after, 'ada')! >= xOf(before, 'ada')!, 'ada was not sent back to the start');
    assert.ok(next.tick === after.tick + 1 && (xOf(next, 'ada') === xOf(after, 'ada')! + 3 || xOf(next, 'ada') === 39));
    // One clock only: after the switch, no snapshot of the old rules, and no tick counted twice.
    const fast = all.slice(firstFast);
    assert.ok(fast.every((s) => s.rules === 'fast-2'), 'the old version ticked after the switch');
    assert.ok(fast.every((s, i) => i === 0 || s.tick > fast[i - 1]!.tick));
    assert.deepEqual(after.players.map((p) => p.name).sort(), ['ada', 'p2']);

    assert.equal(closes, 0);
    assert.equal(host.status().connections, 2);
  } finally {
    for (const c of clients) c.socket.end();
    await host.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
