/**
 * Maps stack traces of plugin code back to the TypeScript sources. Code evaluated through `vm` is not source-mapped
 * by Node, even with --enable-source-maps (DESIGN.md §4), so users would see `bundle:1317` instead of `plugin.ts:42`.
 */
import { SourceMap, type SourceMapPayload } from 'node:module';
import path from 'node:path';

/** Rewrites `filename:line:col` frames of one bundle into source positions. */
export class StackMapper {
  #map: SourceMap;
  #filename: string;
  #sourceDir: string;

  constructor(filename: string, mapJson: string, sourceDir: string) {
    this.#map = new SourceMap(JSON.parse(mapJson) as SourceMapPayload);
    this.#filename = filename;
    this.#sourceDir = sourceDir;
  }

  /** Rewrite the frames of `stack` that point into the bundle. Other frames are left as they are. */
  mapStack(stack: string): string {
    const needle = this.#filename;
    if (!stack.includes(needle)) return stack;
    return stack
      .split('\n')
      .map((line) => {
        const at = line.lastIndexOf(needle + ':');
        if (at < 0) return line;
        const rest = line.slice(at + needle.length + 1);
        const m = /^(\d+):(\d+)/.exec(rest);
        if (!m) return line;
        const entry = this.#map.findEntry(Number(m[1]) - 1, Number(m[2]) - 1);
        if (!entry || !('originalSource' in entry) || !entry.originalSource) return line;
        const source = path.resolve(this.#sourceDir, entry.originalSource);
        const mapped = `${source}:${entry.originalLine + 1}:${entry.originalColumn + 1}`;
        return line.slice(0, at) + mapped + rest.slice(m[0].length);
      })
      .join('\n');
  }

  /** Map an error's stack in place and return it. Non-errors are returned unchanged. */
  mapError<T>(err: T): T {
    if (err instanceof Error && typeof err.stack === 'string') {
      try {
        err.stack = this.mapStack(err.stack);
      } catch {
        // A frozen or exotic error keeps its original stack: mapping is a convenience, never a failure.
      }
    }
    return err;
  }
}
