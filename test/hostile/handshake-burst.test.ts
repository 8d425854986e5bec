/**
 * A burst of WebSocket handshakes arriving together (refused clients retrying in step, a botnet connecting at once)
 * used to run back to back in one turn of the host's loop: the host answered every upgrade before it read any
 * other client, so a live client's reply waited behind all of them (R2: 10-40 ms stalls, measured with --cpu-prof).
 * Handshakes are paced now (src/transport/handshake-pacer.ts): a live client sending while 300 upgrades wait gets its
 * reply before half of them are answered. The property is an order of events, not a time.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { wsClient } from '../helpers/clients.js';
import { counterPlugin, pluginDir } from '../helpers/plugin-dir.js';
import { acceptedSockets, answerHeads, ChildHost, UPGRADE_REQUEST, waitUntil, written } from './hostile-rig.js';

const BURST = 300;

test('a live client is served between the handshakes of a burst, and every handshake of the burst completes', async () => {
  const p = pluginDir(counterPlugin('v1'));
  const host = await ChildHost.start({ plugin: p.entry });
  const url = host.addresses[0]!.url;
  const { port } = new URL(url);
  const sockets: net.Socket[] = [];
  try {
    const live = await wsClient(url);
    // Connect the burst first, so that what arrives together is the upgrade requests, not the accepts.
    sockets.push(...(await acceptedSockets(Number(port), BURST)));
    const answers = answerHeads(sockets);
    const upgraded = (): number => answers.filter((a) => a.startsWith('HTTP/1.1 101')).length;
    // Everything in the kernel before the host reads any of it: the ping behind the 300 requests.
    await host.frozen(async () => {
      await Promise.all(sockets.map((s) => written(s, UPGRADE_REQUEST)));
      await new Promise((resolve) => live.ws.send('ping', resolve));
    });
    await live.inbox.waitFor(1, 10_000);
    const upgradedAtReply = upgraded();
    await waitUntil(() => upgraded() === BURST, 20_000, 'every handshake of the burst answered 101');
    // Unpaced, the reply came after all 300 upgrades (three runs); paced, after 1.
    assert.ok(upgradedAtReply < BURST / 2, `the live client's reply came after ${upgradedAtReply} of ${BURST} upgrades: the burst ran ahead of it`);
    assert.equal(live.inbox.messages[0], 'v1:1:1|ping');
    live.ws.close();
  } finally {
    for (const s of sockets) s.destroy();
    await host.stop();
  }
});
