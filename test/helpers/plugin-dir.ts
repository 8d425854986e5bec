/**
 * Throwaway plugin folders for tests: each test writes its plugin source into its own temp dir, so editing the plugin
 * to trigger swaps never touches the repository.
 */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface PluginDir {
  dir: string;
  /** Absolute path of `plugin.ts`. */
  entry: string;
  /** Write a file relative to the dir (default: the entry). */
  write(source: string, file?: string): string;
  remove(): void;
}

export function pluginDir(source: string, files: Record<string, string> = {}): PluginDir {
  const dir = mkdtempSync(path.join(tmpdir(), 'hotline-test-'));
  const entry = path.join(dir, 'plugin.ts');
  const write = (src: string, file = 'plugin.ts') => {
    const p = path.join(dir, file);
    mkdirSync(path.dirname(p), { recursive: true });
    writeFileSync(p, src);
    return p;
  };
  write(source);
  for (const [f, src] of Object.entries(files)) write(src, f);
  return { dir, entry, write, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A counting echo plugin: replies `${tag}:${n}:${conn seen}:${global total}|${data}`. The global counter and the per-connection
 * counter carry across swaps through migrate/migrateConnection, so a test can check continuity from the replies.
 */
export function counterPlugin(tag: string, extra = ''): string {
  return `
import { definePlugin } from 'hotline';
export default definePlugin<{ total: number }, { seen: number }>({
  name: 'counter', version: '${tag}', api: 1,
  init: () => ({ total: 0 }),
  migrate: (prev) => ({ total: (prev.state as { total: number }).total }),
  migrateConnection: (prev) => ({ seen: (prev as { seen: number }).seen }),
  onOpen(conn) { conn.state = { seen: 0 }; },
  onMessage(conn, data, ctx) {
    ctx.state.total++;
    conn.state.seen++;
    conn.send('${tag}:' + conn.state.seen + ':' + ctx.state.total + '|' + (typeof data === 'string' ? data : Buffer.from(data).toString()));
  },
  ${extra}
});
`;
}
