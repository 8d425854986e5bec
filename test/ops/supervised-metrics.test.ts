/**
 * The HTTP admin of a supervisor (`hotline start`), real worker processes (issue 14): it stays up across an upgrade,
 * its counters keep running totals (never reset), the API runs the supervisor's command table (an upgrade through
 * HTTP), and the event stream carries the upgrade and the worker's swaps.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { type WsClient, wsClient } from '../helpers/clients.js';
import { counterPlugin, pluginDir } from '../helpers/plugin-dir.js';
import { parseExposition } from '../helpers/prom-text.js';
import { startSupervisor } from '../handoff/supervisor-process.js';

const TOKEN = 'supervised-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

test('metrics survive an upgrade: running totals across workers, upgrade counters, events from the supervisor', { timeout: 60_000 }, async () => {
  const p = pluginDir(counterPlugin('1.0.0'), { 'worker.env': '' });
  const sup = await startSupervisor({
    entry: p.entry,
    admin: path.join(p.dir, 'admin.sock'),
    envFile: path.join(p.dir, 'worker.env'),
    readyTimeoutMs: 30_000,
    listen: [{ transport: 'ws', host: '127.0.0.1', port: 0 }],
    httpAdmin: { listen: '127.0.0.1:0', token: TOKEN },
  });
  const url = `http://127.0.0.1:${sup.httpAdmin!.port}`;
  const scrape = async () => parseExposition(await (await fetch(`${url}/metrics`)).text());
  const clients: WsClient[] = [];
  let sent = 0;
  const round = async (n: number) => {
    for (let i = 0; i < n; i++) {
      for (const c of clients) {
        c.ws.send(`m${i}`);
        sent++;
      }
    }
    await Promise.all(clients.map((c) => c.inbox.waitFor(sent / clients.length)));
  };
  const ac = new AbortController();
  try {
    for (let i = 0; i < 2; i++) clients.push(await wsClient(`ws://127.0.0.1:${sup.addresses[0]!.port}`));
    await round(50);
    const before = await scrape();
    assert.equal(before.sum('hotline_messages_received_total'), 100);
    assert.equal(before.sum('hotline_connections', { transport: 'ws' }), 2);

    const events = await fetch(`${url}/api/events`, { headers: auth, signal: ac.signal });
    const reader = events.body!.pipeThrough(new TextDecoderStream()).getReader();
    const res = await fetch(`${url}/api/upgrade`, { method: 'POST', headers: auth });
    assert.equal(res.status, 200);
    const summary = ((await res.json()) as { result: { outcome: string; moved: number } }).result;
    assert.equal(summary.outcome, 'committed');
    let text = '';
    while (!/event: upgrade\n/.test(text)) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    assert.match(text, /event: upgrade-progress\n/);

    await round(30);
    const after = await scrape();
    assert.equal(after.sum('hotline_messages_received_total'), 160, 'the old worker\'s 100 plus the new worker\'s 60: no reset');
    assert.equal(after.sum('hotline_messages_sent_total'), 160);
    assert.equal(after.sum('hotline_handler_duration_seconds_count'), 160);
    assert.equal(after.sum('hotline_swaps_total', { outcome: 'switched', trigger: 'start' }), 2, 'each worker\'s first load, summed');
    assert.equal(after.sum('hotline_upgrades_total', { outcome: 'committed' }), 1);
    assert.equal(after.sum('hotline_upgrade_connections_total', { result: 'moved' }), summary.moved);
    assert.equal(after.sum('hotline_upgrade_duration_seconds_count'), 1);
    assert.equal(after.sum('hotline_connections', { transport: 'ws' }), 2, 'a gauge is the serving worker\'s, not a sum');

    // A reload through the supervisor's table: the worker's swap reaches the supervisor's stream.
    p.write(counterPlugin('1.0.1'));
    const reload = await fetch(`${url}/api/reload`, { method: 'POST', headers: auth });
    assert.equal(((await reload.json()) as { result: { to: string } }).result.to, 'counter@1.0.1');
    while (!/"to":"counter@1\.0\.1"/.test(text)) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    assert.match(text, /event: phase\n/);
    assert.equal((await scrape()).sum('hotline_version_info', { version: '1.0.1' }), 1);
    assert.equal((await fetch(`${url}/readyz`)).status, 200);
  } finally {
    ac.abort();
    for (const c of clients) c.ws.close();
    sup.child.kill('SIGTERM');
    await sup.exited;
    p.remove();
  }
});
