/**
 * The published package, as a new user gets it (issue 10, fault 8): `npm pack`, install the tarball into a fresh
 * project, type-check a file that imports `hotline` and `hotline/client` with `strict` and `skipLibCheck: false`
 * (no @types/ws: the public .d.ts must not name ws types), and run its `hotline` bin. Also what the tarball holds: a
 * LICENSE, no `prepare` script, and source maps that carry their sources (src/ is not shipped).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const repo = path.resolve(import.meta.dirname, '../..');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const work = mkdtempSync(path.join(tmpdir(), 'hotline-pack-'));
const project = path.join(work, 'consumer');
const installed = path.join(project, 'node_modules', 'hotline');

async function npm(args: string[], cwd: string): Promise<{ stdout: string; stderr: string }> {
  return run('npm', args, { cwd, timeout: 120_000, maxBuffer: 16 << 20 });
}

before(async () => {
  // prepack builds dist/ first.
  const { stdout } = await npm(['pack', '--silent', '--pack-destination', work], repo);
  const tarball = path.join(work, stdout.trim().split('\n').at(-1)!);
  mkdirSync(project);
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  // @types/node only, as any Node project has it; the deps come from the npm cache when offline.
  const nodeTypes = JSON.parse(readFileSync(path.join(repo, 'node_modules/@types/node/package.json'), 'utf8')) as { version: string };
  await npm(['install', '--no-audit', '--no-fund', '--prefer-offline', tarball, `@types/node@${nodeTypes.version}`], project);
});

after(() => rmSync(work, { recursive: true, force: true }));

test('a strict TypeScript project without skipLibCheck type-checks against hotline and hotline/client', async () => {
  writeFileSync(
    path.join(project, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { strict: true, skipLibCheck: false, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', noEmit: true, types: ['node'] },
      include: ['index.ts'],
    }),
  );
  writeFileSync(
    path.join(project, 'index.ts'),
    `import { createHost, definePlugin, HotlineError, type HostOptions, type HostStatus } from 'hotline';
import { connect, type HotlineClient } from 'hotline/client';
export const plugin = definePlugin<{ n: number }>({ name: 'x', version: '1', api: 1, init: () => ({ n: 0 }), onMessage(conn, data) { conn.send(data); } });
export const options: HostOptions = { plugin: './plugin.ts', listen: [{ transport: 'ws', port: 0 }] };
export async function start(): Promise<HostStatus> { const host = await createHost(options); return host.status(); }
export const client = (): HotlineClient => connect('ws://127.0.0.1:1/');
export const isCoded = (e: unknown): boolean => e instanceof HotlineError;
`,
  );
  const r = await run(process.execPath, [tsc, '-p', project], { cwd: project }).catch((err: { stdout: string }) => err);
  assert.equal(r.stdout.trim(), '', 'tsc reports nothing');
  assert.throws(() => readFileSync(path.join(project, 'node_modules/@types/ws/package.json')), 'no @types/ws was needed');
});

test('the installed bin answers --version with the package version', async () => {
  const pkg = JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8')) as { version: string };
  const { stdout } = await run(path.join(project, 'node_modules/.bin/hotline'), ['--version'], { cwd: project });
  assert.equal(stdout.trim(), `hotline ${pkg.version}`);
});

test('the tarball has a LICENSE, no prepare script, and source maps that carry their own sources', () => {
  assert.match(readFileSync(path.join(installed, 'LICENSE'), 'utf8'), /MIT License/);
  const pkg = JSON.parse(readFileSync(path.join(installed, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.equal(pkg.scripts.prepare, undefined, 'npm would run (and warn about) prepare on install');
  const maps = (readdirSync(path.join(installed, 'dist'), { recursive: true }) as string[]).filter((f) => f.endsWith('.js.map'));
  assert.ok(maps.length > 10);
  for (const f of maps) {
    const map = JSON.parse(readFileSync(path.join(installed, 'dist', f), 'utf8')) as { sources: string[]; sourcesContent?: string[] };
    assert.equal(map.sourcesContent?.length, map.sources.length, `${f} carries its sources`);
  }
});
