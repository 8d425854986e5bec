/**
 * The chat page in a real browser (Debian's chromium driven by playwright-core, never a downloaded browser) against a
 * real `hotline dev --sessions` process: kill -9 the server, start it again on the same port, and the page shows
 * "reconnecting…", then "resumed", with its history intact and every message exactly once, in order, including the
 * ones typed while the server was down.
 *
 * Skips when no chromium is installed (.ci/run installs it when it can). Set HOTLINE_BROWSER_SCREENSHOT=/tmp/x.png
 * to keep a screenshot of the page after the resume.
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { HotlineProcess } from '../e2e/hotline-process.js';

const EXAMPLE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../examples/chat');

const CHROMIUM = [process.env.HOTLINE_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p): p is string => !!p && existsSync(p));

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** What the page shows, read from its DOM: chat lines as `nick: text`, notices as `* text`, and the status. */
interface PageView {
  lines: string[];
  status: string;
  /** Every status text the page has shown since the observer was installed, in order. */
  statuses: string[];
}

/**
 * Read the page, in the page. Browser code as text: this project's TypeScript has no DOM types, and adding them for
 * one test would change the globals every Node file type-checks against.
 */
const READ_VIEW = `(() => {
  const lines = [...document.querySelectorAll('#lines li')].map((li) => {
    const nick = li.querySelector('.nick');
    const text = li.querySelector(nick ? '.nick + span' : '.system');
    return nick ? nick.textContent + ' ' + (text && text.textContent) : '* ' + (text && text.textContent);
  });
  return { lines, status: document.getElementById('status').textContent, statuses: window.statuses || [] };
})()`;

/** Record every status text the page shows, so a "reconnecting…" that is quickly replaced is not missed. */
const RECORD_STATUSES = `(() => {
  const el = document.getElementById('status');
  window.statuses = [el.textContent];
  new MutationObserver(() => window.statuses.push(el.textContent)).observe(el, { childList: true, characterData: true, subtree: true });
})()`;

function view(page: Page): Promise<PageView> {
  return page.evaluate(READ_VIEW) as Promise<PageView>;
}

/** Poll the page (bounded) until `ok` holds; fail with what the page shows. */
async function until(page: Page, what: string, ok: (v: PageView) => boolean, timeoutMs = 15_000): Promise<PageView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await view(page);
    if (ok(v)) return v;
    if (Date.now() > deadline) assert.fail(`the page never showed ${what}; it shows ${JSON.stringify(v)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function say(page: Page, text: string): Promise<void> {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
}

test('chat page: kill -9 and restart the server, the page shows reconnecting…, resumes, every message once and in order', { skip: CHROMIUM ? false : 'no chromium at /usr/bin/chromium (apt-get install chromium)', timeout: 60_000 }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'hotline-browser-'));
  for (const f of ['plugin.ts', 'format.ts', 'public']) cpSync(path.join(EXAMPLE, f), path.join(dir, f), { recursive: true });
  const profile = mkdtempSync(path.join(tmpdir(), 'hotline-chromium-'));
  const admin = path.join(dir, 'admin.sock');
  const args = (port: string) => ['dev', path.join(dir, 'plugin.ts'), '--port', port, '--static', path.join(dir, 'public'), '--sessions', '--admin', admin];
  const procs: HotlineProcess[] = [];
  let context: BrowserContext | undefined;
  try {
    const first = await HotlineProcess.start(args('0'), dir);
    procs.push(first.proc);
    const port = new URL(first.ready.url).port;

    // launchPersistentContext, because playwright refuses a --user-data-dir among the args: the profile is ours and temporary.
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    const page = context.pages()[0] ?? (await context.newPage());
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await page.goto(`http://127.0.0.1:${port}/`);
    await until(page, 'connected', (v) => v.status === 'connected' && v.lines.length === 1);
    await page.evaluate(RECORD_STATUSES);

    const before = ['one', 'two', 'three'];
    for (const t of before) await say(page, t);
    await until(page, 'the first three messages', (v) => v.lines.length === 4);

    first.proc.kill('SIGKILL');
    await first.proc.exited;
    await until(page, 'reconnecting…', (v) => v.status === 'reconnecting…');
    // Typed while the server is down: the client queues them and the server gets them once it is back.
    const offline = ['while down 1', 'while down 2'];
    for (const t of offline) await say(page, t);

    // Same port, so the page reconnects to the URL it already has; same session store in dir/sessions.
    const second = await HotlineProcess.start(args(port), dir);
    procs.push(second.proc);
    const after = await until(page, 'resumed with every message', (v) => v.status === 'resumed' && v.lines.length === 6);
    await say(page, 'after');
    const final = await until(page, 'the message sent after the resume', (v) => v.lines.length === 7);

    const joined = final.lines[0]!;
    assert.match(joined, /^\* guest-1 joined$/);
    const guest = joined.slice(2, -' joined'.length);
    assert.deepEqual(
      final.lines,
      [joined, ...[...before, ...offline, 'after'].map((t) => `${guest}: ${t}`)],
      'every line exactly once, in order, and no leave/join notice: the session resumed rather than reconnected',
    );
    assert.deepEqual(after.lines, final.lines.slice(0, 6));
    const down = final.statuses.indexOf('reconnecting…');
    assert.ok(down >= 0, `the page never showed reconnecting…: ${JSON.stringify(final.statuses)}`);
    assert.ok(final.statuses.indexOf('resumed', down) > down, `resumed did not follow reconnecting…: ${JSON.stringify(final.statuses)}`);
    assert.ok(!final.statuses.includes('new session'), 'the session was lost instead of resumed');
    assert.deepEqual(pageErrors, []);
    if (process.env.HOTLINE_BROWSER_SCREENSHOT) await page.screenshot({ path: process.env.HOTLINE_BROWSER_SCREENSHOT });
  } finally {
    await context?.close();
    for (const p of procs) p.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.exited));
    rmSync(dir, { recursive: true, force: true });
    rmSync(profile, { recursive: true, force: true });
  }
});
