/**
 * Bundles a plugin entry and its local imports into one CommonJS file with esbuild. npm packages stay external and
 * are shared with the host. The incremental context makes a rebuild take a few milliseconds (DESIGN.md §3.1).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as esbuild from 'esbuild';
import { HotlineError } from '../errors.js';
import { isServiceGone, replaceService, serviceGeneration } from './esbuild-service.js';

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
  /** The esbuild service generation `ctx` lives in (esbuild-service.ts). */
  let ctxGeneration = -1;
  let disposed = false;

  async function context() {
    if (ctx) return ctx;
    ctxGeneration = serviceGeneration();
    ctx = await esbuild.context({
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

  /**
   * Rebuild; when esbuild's service process is gone (killed by a SIGHUP to the process group: esbuild-service.ts),
   * start a new service and context and try once more. A second failure is reported like any build error.
   */
  async function rebuild() {
    try {
      return await (await context()).rebuild();
    } catch (err) {
      if (!isServiceGone(err)) throw err;
      const dead = ctx;
      ctx = undefined;
      await dead?.dispose().catch(() => undefined);
      await replaceService(ctxGeneration);
      return await (await context()).rebuild();
    }
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
        result = await rebuild();
      } catch (err) {
        // No cause: esbuild's error is this message again, and its stack is esbuild's and hotline's, not the user's.
        throw new HotlineError('HOTLINE_E_BUILD', formatBuildError(err));
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

/** How many of esbuild's errors a build error shows; the first is usually the cause of the rest. */
const ERRORS_SHOWN = 5;

/**
 * The whole of what a user needs from a failed build: each error as `file:line:column: text` with a code frame under
 * it. esbuild's own message ("Build failed with 1 error: …") repeats this, so it is not kept as the cause.
 */
export function formatBuildError(err: unknown): string {
  const failure = err as Partial<esbuild.BuildFailure>;
  if (Array.isArray(failure.errors) && failure.errors.length > 0) {
    const shown = failure.errors.slice(0, ERRORS_SHOWN).map(formatMessage);
    const more = failure.errors.length - ERRORS_SHOWN;
    return shown.join('\n') + (more > 0 ? `\n(${more} more error${more === 1 ? '' : 's'})` : '');
  }
  return err instanceof Error ? err.message : String(err);
}

function formatMessage(m: esbuild.Message): string {
  const loc = m.location;
  if (!loc) return m.text;
  const head = `${loc.file}:${loc.line}:${loc.column + 1}: ${m.text}`;
  if (!loc.lineText) return head;
  const gutter = String(loc.line);
  const caret = '^'.repeat(Math.max(1, Math.min(loc.length, loc.lineText.length - loc.column)));
  return `${head}\n  ${gutter} | ${loc.lineText}\n  ${' '.repeat(gutter.length)} | ${' '.repeat(loc.column)}${caret}`;
}
