/**
 * Bundles a plugin entry and its local imports into one CommonJS file with esbuild. npm packages stay external and
 * are shared with the host. The incremental context makes a rebuild take a few milliseconds (DESIGN.md §3.1).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as esbuild from 'esbuild';
import { HotlineError } from '../errors.js';

/** One build of the plugin: the code to evaluate, its source map, and what it was built from. */
export interface Bundle {
  code: string;
  /** The source map, as JSON text, with paths relative to `sourceRoot`. */
  map: string;
  /** Absolute paths of every local file in the bundle, the entry included. */
  inputs: string[];
  /** A short content hash of the code, shown in status and history. */
  hash: string;
  /** Absolute path of the entry file. */
  entry: string;
}

/** Builds one plugin entry again and again. */
export interface Bundler {
  build(): Promise<Bundle>;
  dispose(): Promise<void>;
}

/** Create a bundler for `entry`. Nothing is built until `build()`. */
export function createBundler(entry: string): Bundler {
  const absEntry = path.resolve(entry);
  let ctx: esbuild.BuildContext<{ write: false; metafile: true }> | undefined;
  let disposed = false;

  async function context() {
    ctx ??= await esbuild.context({
      entryPoints: [absEntry],
      bundle: true,
      write: false,
      metafile: true,
      format: 'cjs',
      platform: 'node',
      target: 'node20',
      packages: 'external',
      sourcemap: 'external',
      sourcesContent: false,
      outfile: path.join(path.dirname(absEntry), '.hotline-bundle.js'),
      logLevel: 'silent',
      absWorkingDir: path.dirname(absEntry),
    });
    return ctx;
  }

  return {
    async build() {
      if (disposed) throw new HotlineError('HOTLINE_E_BUILD', 'the bundler is disposed');
      // esbuild reports a missing entry as a resolve error; name it precisely, since a deleted entry is a
      // failure a user will meet while editing (rename, git checkout).
      if (!existsSync(absEntry)) {
        throw new HotlineError('HOTLINE_E_ENTRY_MISSING', `the plugin entry ${absEntry} does not exist`);
      }
      let result: esbuild.BuildResult<{ write: false; metafile: true }>;
      try {
        result = await (await context()).rebuild();
      } catch (err) {
        throw new HotlineError('HOTLINE_E_BUILD', formatBuildError(err), { cause: err });
      }
      const js = result.outputFiles.find((f) => f.path.endsWith('.js'));
      const map = result.outputFiles.find((f) => f.path.endsWith('.js.map'));
      if (!js || !map) throw new HotlineError('HOTLINE_E_BUILD', 'esbuild produced no output');
      const base = path.dirname(absEntry);
      const inputs = Object.keys(result.metafile.inputs).map((p) => path.resolve(base, p));
      return {
        code: js.text,
        map: map.text,
        inputs,
        hash: createHash('sha256').update(js.text).digest('hex').slice(0, 12),
        entry: absEntry,
      };
    },
    async dispose() {
      disposed = true;
      const c = ctx;
      ctx = undefined;
      await c?.dispose();
    },
  };
}

function formatBuildError(err: unknown): string {
  const failure = err as Partial<esbuild.BuildFailure>;
  if (Array.isArray(failure.errors) && failure.errors.length > 0) {
    return failure.errors
      .slice(0, 5)
      .map((m) => (m.location ? `${m.location.file}:${m.location.line}:${m.location.column + 1}: ${m.text}` : m.text))
      .join('\n');
  }
  return err instanceof Error ? err.message : String(err);
}
