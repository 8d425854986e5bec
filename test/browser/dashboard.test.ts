/**
 * The dashboard in a real browser (Debian's chromium driven by playwright-core) against a host with the HTTP admin
 * and file watching on (issue 14): type the token, see the start swap; edit the plugin file and see the watch swap
 * appear live; click rollback and see the rollback in the timeline. A screenshot is kept at the path the test
 * prints (HOTLINE_BROWSER_SCREENSHOT, else a temp file).
 *
 * Skips when no chromium is installed (.ci/run installs it when it can).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { createHost } from '../../src/index.js';
import { type WsClient, wsClient } from '../helpers/clients.js';
import { counterPlugin, pluginDir } from '../helpers/plugin-dir.js';
import { quietLogger } from '../helpers/quiet-logger.js';

const CHROMIUM = [process.env.HOTLINE_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p): p is string => !!p && existsSync(p));
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const TOKEN = 'dashboard-token-0123456789';

/** What the dashboard shows, read in the page (browser code as text: no DOM types in this project). */
const READ = `(() => ({
  plugin: document.getElementById('plugin').textContent,
  stream: document.getElementById('stream').textContent,
  connections: document.getElementById('s-conn').textContent,
  notice: document.getElementById('notice').textContent,
  swaps: [...document.querySelectorAll('#timeline li[data-trigger]')].map((li) => li.dataset.trigger + ' ' + li.dataset.outcome + ' ' + li.dataset.to),
  versions: document.querySelectorAll('#versions tr').length,
}))()`;

interface View {
  plugin: string;
  stream: string;
  connections: string;
  notice: string;
  swaps: string[];
  versions: number;
}

async function until(page: Page, what: string, ok: (v: View) => boolean, timeoutMs = 15_000): Promise<View> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = (await page.evaluate(READ)) as View;
    if (ok(v)) return v;
    if (Date.now() > deadline) assert.fail(`the dashboard never showed ${what}; it shows ${JSON.stringify(v)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test('dashboard: a file edit shows up as a live swap, the rollback button rolls back, screenshot kept', { skip: CHROMIUM ? false : 'no chromium at /usr/bin/chromium (apt-get install chromium)', timeout: 60_000 }, async () => {
  const p = pluginDir(counterPlugin('1.0.0'));
  const host = await createHost({ plugin: p.entry, logger: quietLogger, watch: true, httpAdmin: { listen: '127.0.0.1:0', token: TOKEN } });
  const profile = mkdtempSync(path.join(tmpdir(), 'hotline-chromium-'));
  const shot = process.env.HOTLINE_BROWSER_SCREENSHOT ?? path.join(mkdtempSync(path.join(tmpdir(), 'hotline-shot-')), 'dashboard.png');
  const clients: WsClient[] = [];
  let context: BrowserContext | undefined;
  let traffic: NodeJS.Timeout | undefined;
  try {
    for (let i = 0; i < 3; i++) clients.push(await wsClient(host.addresses()[0]!.url));
    // Some traffic, so the chart and the counters have something to show.
    traffic = setInterval(() => clients.forEach((c, i) => c.ws.send(`m${i}`)), 20);
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1280, height: 900 } });
    const page = context.pages()[0] ?? (await context.newPage());
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    const a = host.httpAdminAddress!;
    await page.goto(`http://${a.host}:${a.port}/`);

    await page.fill('#token', 'wrong-token-0000000000000');
    await page.click('#connect');
    await page.waitForFunction(`document.getElementById('state').textContent === 'token refused'`, undefined, { timeout: 10_000 });

    await page.fill('#token', TOKEN);
    await page.click('#connect');
    await until(page, 'the start swap and a live stream', (v) => v.swaps.length === 1 && v.swaps[0] === 'start switched counter@1.0.0' && v.stream === 'live' && v.connections === '3');

    p.write(counterPlugin('1.0.1'));
    const afterEdit = await until(page, 'the watch swap', (v) => v.swaps[0] === 'watch switched counter@1.0.1');
    assert.match(afterEdit.plugin, /^counter@1\.0\.1/);

    await page.click('#rollback');
    const afterRollback = await until(page, 'the rollback', (v) => v.swaps[0] === 'rollback switched counter@1.0.0' && /^rollback: switched/.test(v.notice));
    assert.deepEqual(afterRollback.swaps, ['rollback switched counter@1.0.0', 'watch switched counter@1.0.1', 'start switched counter@1.0.0']);
    assert.equal(afterRollback.versions, 3, 'one row per loaded version');
    await page.screenshot({ path: shot, fullPage: true });
    process.stdout.write(`# dashboard screenshot: ${shot}\n`);
    assert.deepEqual(pageErrors, []);
  } finally {
    clearInterval(traffic);
    await context?.close();
    for (const c of clients) c.ws.close();
    await host.close();
    rmSync(profile, { recursive: true, force: true });
    p.remove();
  }
});
