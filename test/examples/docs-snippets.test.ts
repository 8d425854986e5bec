/**
 * The code in the docs must be true. Every ```ts block of the README and the guides is type-checked against the real
 * API, and every block that is a whole plugin (it has `export default definePlugin`) is loaded by a real host and
 * answers a message. A block that is deliberately partial is fenced as ```ts fragment and skipped. And docs/api.md
 * names every export of src/index.ts.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createHost } from '../../src/index.js';
import { wsClient } from '../helpers/clients.js';
import { quietLogger } from '../helpers/quiet-logger.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DOCS = ['README.md', 'docs/guide.md', 'docs/api.md', 'docs/zh-CN/guide.md', 'docs/zh-CN/api.md'];

interface Snippet {
  /** e.g. docs/guide.md:120 */
  where: string;
  code: string;
}

function snippets(): Snippet[] {
  const out: Snippet[] = [];
  for (const doc of DOCS) {
    const text = readFileSync(path.join(ROOT, doc), 'utf8');
    const fence = /^```ts\n([\s\S]*?)^```$/gm;
    let m: RegExpExecArray | null;
    while ((m = fence.exec(text))) {
      const line = text.slice(0, m.index).split('\n').length;
      out.push({ where: `${doc}:${line}`, code: m[1]! });
    }
  }
  return out;
}

const isPlugin = (s: Snippet) => /export default definePlugin/.test(s.code);
/** Plugins that reach the network are type-checked only: the test machine has no network. */
const isRunnable = (s: Snippet) => isPlugin(s) && !/\bfetch\(/.test(s.code);

test('the docs have code to check', () => {
  const all = snippets();
  assert.ok(all.length >= 10, `found only ${all.length} ts blocks`);
  assert.ok(all.filter(isPlugin).length >= 5);
});

test('every ts block of the docs type-checks against the real API', async () => {
  // Inside the repository, so the snippets resolve node_modules types; test/.tmp is git-ignored.
  const dir = path.join(ROOT, 'test', '.tmp', `docs-snippets-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  try {
    const files = snippets().map((s, i) => {
      const file = path.join(dir, `snippet-${i}.ts`);
      // `export {}` makes each block a module of its own, so names do not collide across blocks.
      writeFileSync(file, `// ${s.where}\n${s.code}\nexport {};\n`);
      return { file, where: s.where };
    });
    writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        extends: path.join(ROOT, 'tsconfig.json'),
        compilerOptions: { noEmit: true, rootDir: ROOT, paths: { hotline: [path.join(ROOT, 'src/index.ts')] } },
        include: files.map((f) => f.file),
      }),
    );
    const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const result = await promisify(execFile)(process.execPath, [tsc, '-p', path.join(dir, 'tsconfig.json')], {
      cwd: ROOT,
    }).then(
      () => '',
      (err: { stdout?: string }) => err.stdout ?? String(err),
    );
    // Only the snippets' own errors count: the sources they import are type-checked by `npm run typecheck`, and
    // another engineer's work in progress there must not fail this test. An error is one line plus indented ones.
    const rel = path.relative(ROOT, dir) + path.sep;
    const ours: string[] = [];
    let keep = false;
    for (const line of result.split('\n')) {
      if (!line.startsWith(' ')) keep = line.startsWith(rel) || line.startsWith(dir);
      if (keep) ours.push(line);
    }
    // Name the doc and line, not the temp file, in a failure.
    const readable = files.reduce((msg, f) => msg.split(f.file).join(f.where).split(path.relative(ROOT, f.file)).join(f.where), ours.join('\n'));
    assert.equal(readable, '', readable);
    assert.ok(!/error TS/.test(result) || /^src\//m.test(result), `tsc failed outside the snippets:\n${result}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every whole plugin in the docs loads in a real host and answers', async () => {
  const dir = path.join(ROOT, 'test', '.tmp', `docs-plugins-${process.pid}`);
  try {
    for (const [i, s] of snippets().filter(isRunnable).entries()) {
      const entry = path.join(dir, String(i), 'plugin.ts');
      mkdirSync(path.dirname(entry), { recursive: true });
      writeFileSync(entry, s.code);
      const host = await createHost({ plugin: entry, logger: quietLogger, probation: false });
      let handlerErrors = 0;
      host.on('handler-error', () => handlerErrors++);
      try {
        const c = await wsClient(host.addresses()[0]!.url);
        c.send('ada');
        // Not every plugin replies (a ticker does not): the message must reach onMessage, and nothing may fail.
        const handled = () => host.status().versions.at(-1)?.messages ?? 0;
        const deadline = Date.now() + 10_000;
        while (handled() < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
        assert.equal(handled(), 1, `${s.where}: the message was not handled`);
        c.ws.close();
        await c.closed;
      } finally {
        await host.close();
      }
      assert.equal(handlerErrors, 0, `${s.where}: a handler failed`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('docs/api.md documents every export of src/index.ts', () => {
  const index = readFileSync(path.join(ROOT, 'src', 'index.ts'), 'utf8');
  const api = readFileSync(path.join(ROOT, 'docs', 'api.md'), 'utf8');
  const names = [...index.matchAll(/export (?:type )?\{([^}]*)\}/g)].flatMap((m) =>
    m[1]!.split(',').map((n) => n.trim().replace(/^type /, '').split(/\s+as\s+/).at(-1)!).filter(Boolean),
  );
  assert.ok(names.length >= 20, `read only ${names.length} exports`);
  const missing = names.filter((n) => !api.includes('`' + n + '`') && !api.includes('`' + n + '('));
  assert.deepEqual(missing, [], `add these exports to docs/api.md: ${missing.join(', ')}`);
});
