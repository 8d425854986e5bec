/**
 * Generated sources for the benches, written into temp dirs: hotline plugins and their plain-Node equivalents, so
 * each figure compares the same work done two ways. Nothing here touches the repository's own files.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);

/** Absolute file URL of the repository's `ws`, so a server in a temp dir imports the same copy without node_modules. */
export const WS_URL = pathToFileURL(require.resolve('ws')).href;

export interface TempDir {
  dir: string;
  write(file: string, source: string): string;
  remove(): void;
}

export function tempDir(prefix: string): TempDir {
  const dir = mkdtempSync(path.join(tmpdir(), `hotline-bench-${prefix}-`));
  return {
    dir,
    write(file, source) {
      const p = path.join(dir, file);
      mkdirSync(path.dirname(p), { recursive: true });
      writeFileSync(p, source);
      return p;
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * An echo plugin. With `tag`, replies `tag|data` (P3, P5 read the version from it); without, replies the data as
 * is, byte for byte what the raw ws server does (P2). State carries over so a swap does real migrate work.
 */
export function echoPlugin(tag?: string): string {
  const reply = tag === undefined ? 'data' : `'${tag}|' + (typeof data === 'string' ? data : Buffer.from(data).toString())`;
  return `
import { definePlugin } from 'hotline';
export default definePlugin<{ total: number }, { seen: number }>({
  name: 'bench-echo', version: '${tag ?? '1.0.0'}', api: 1,
  init: () => ({ total: 0 }),
  migrate: (prev) => ({ total: (prev.state as { total: number }).total }),
  migrateConnection: (prev) => prev as { seen: number },
  onOpen(conn) { conn.state = { seen: 0 }; },
  onMessage(conn, data, ctx) {
    ctx.state.total++;
    conn.state.seen++;
    conn.send(${reply});
  },
});
`;
}

/** The raw ws echo server P2 compares against: the same echo written directly against `ws`. */
export function rawEchoServer(): string {
  return `
import WS from '${WS_URL}';
const wss = new WS.WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
wss.on('listening', () => process.send({ type: 'ready', url: 'ws://127.0.0.1:' + wss.address().port }));
wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
process.on('disconnect', () => process.exit(0));
`;
}

// The nine helper modules of the 10-file app: some real work per message, imported in a chain and a fan.
function helperModule(i: number, ext: string, typed: boolean): string {
  const S = typed ? 's: string' : 's';
  const N = typed ? 'n: number' : 'n';
  const dep = i > 1 ? `import { step${i - 1} } from './m${i - 1}${ext}';\n` : '';
  const prev = i > 1 ? `step${i - 1}(s)` : 's';
  return `${dep}export const NAME${i} = 'm${i}';
export function step${i}(${S}) { const t = ${prev}; return t.length > 64 ? t.slice(0, 64) : t; }
export function score${i}(${N}) { let a = ${i}; for (let k = 0; k < 8; k++) a = (a * 31 + n + k) % 1000003; return a; }
`;
}

export interface App10 {
  /** The file whose edit is timed: it holds the version tag. */
  tagFile: string;
  /** The entry: plugin.ts (hotline) or server.mjs / server.ts (plain ws). */
  entry: string;
  setTag(tag: string): void;
}

/**
 * A 10-file app: an entry, `tag`, and modules m1..m8. `kind` picks the entry: a hotline plugin (TS), a plain ws
 * server as ES modules (for `node --watch`), or the same plain server in TS (for `tsx watch`). All three reply
 * `TAG|<message>` after running the message through the same helpers.
 */
export function writeApp10(dir: TempDir, kind: 'hotline' | 'node' | 'tsx'): App10 {
  const ext = kind === 'node' ? '.mjs' : '.ts';
  const importExt = kind === 'node' ? '.mjs' : '.js';
  const tagFile = dir.write(`tag${ext}`, `export const TAG = 'v0';\n`);
  for (let i = 1; i <= 8; i++) dir.write(`m${i}${ext}`, helperModule(i, importExt, kind !== 'node'));
  const imports = `import { TAG } from './tag${importExt}';\nimport { step8 } from './m8${importExt}';\n` +
    Array.from({ length: 8 }, (_, k) => `import { score${k + 1} } from './m${k + 1}${importExt}';`).join('\n');
  const work = `const n = ${Array.from({ length: 8 }, (_, k) => `score${k + 1}(text.length)`).join(' + ')}; void n; step8(text);`;
  let entry: string;
  if (kind === 'hotline') {
    entry = dir.write('plugin.ts', `import { definePlugin } from 'hotline';
${imports}
export default definePlugin({
  name: 'app10', version: TAG, api: 1,
  init: () => ({}),
  migrate: (prev) => prev.state as object,
  onMessage(conn, data) {
    const text = typeof data === 'string' ? data : '';
    ${work}
    conn.send(TAG + '|' + text);
  },
});
`);
  } else {
    entry = dir.write(`server${ext}`, `import WS from '${WS_URL}';
${imports}
const wss = new WS.WebSocketServer({ host: '127.0.0.1', port: Number(process.env.PORT), perMessageDeflate: false });
wss.on('connection', (ws) => ws.on('message', (data) => {
  const text = String(data);
  ${work}
  ws.send(TAG + '|' + text);
}));
`);
  }
  return { tagFile, entry, setTag: (tag) => writeFileSync(tagFile, `export const TAG = '${tag}';\n`) };
}

/**
 * A ~200 KB module (P4): 1,700 distinct functions and a table of them, so a version holds real compiled code, not
 * just one big string. `esm` gives the same module as an ES module for the naive `import(url?v=n)` baseline.
 */
export function bigModule(version: number, format: 'plugin' | 'esm'): string {
  const x = format === 'plugin' ? 'x: string' : 'x';
  const fns: string[] = [];
  for (let i = 0; i < 1700; i++) {
    fns.push(`function f${i}(${x}) { const t = [${i}, ${version}, 'k${i}-' + x] as const; return t[0] * 31 + t[1] + String(t[2]).length; }`);
  }
  const table = `const TABLE = [${Array.from({ length: 1700 }, (_, i) => `f${i}`).join(', ')}];`;
  const handle = `function handle(${x}) { let a = 0; for (let i = 0; i < TABLE.length; i += 97) a += TABLE[i](x); return a; }`;
  let body = `${fns.join('\n')}\n${table}\n${handle}\n`;
  if (format === 'esm') return `${body.replace(/ as const/g, '')}export default { version: ${version}, handle };\n`;
  body = body.replace('TABLE[i](x)', 'TABLE[i]!(x)');
  return `import { definePlugin } from 'hotline';
${body}
export default definePlugin({
  name: 'big', version: '${version}.0.0', api: 1,
  init: () => ({ n: 0 }),
  migrate: (prev) => prev.state as { n: number },
  onMessage(conn, data) { conn.send(String(handle(String(data)))); },
});
`;
}
