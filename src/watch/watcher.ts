/**
 * File watching for the plugin's import graph. chokidar reports a change only once the file has stopped growing
 * (awaitWriteFinish), so a half-written file is never built; its atomic mode folds an editor's write-to-temp-then-
 * rename into one change. A burst of changes is debounced into one reload, and the swap queue coalesces the rest.
 */
import path from 'node:path';
import { type FSWatcher, watch } from 'chokidar';

export interface WatchOptions {
  /**
   * Quiet time after the last change before a reload, in ms. Default 2: the stability wait below is what keeps
   * half-written files out, and the swap queue coalesces what a short debounce lets through (bench P1).
   */
  debounce?: number;
  /**
   * How long a file's size must hold still before it counts as written, in ms. Default 10. It was 20: bench P1 showed
   * the watcher was 33 of the 39 ms from save to first new reply; 10 halves that.
   */
  stability?: number;
  /** @deprecated Since 0.2: use `debounce` (every duration option is in ms, without a unit suffix). */
  debounceMs?: number;
  /** @deprecated Since 0.2: use `stability`. */
  stabilityMs?: number;
}

const IGNORED = /(^|[/\\])(node_modules|dist|build|coverage|\.git|\.hotline)([/\\]|$)|\.hotline-bundle\.js/;

/** Watches the entry's directory plus every bundle input outside it, and calls `onChange` once per burst. */
export class PluginWatcher {
  #watcher: FSWatcher;
  #timer: NodeJS.Timeout | undefined;
  #debounce: number;
  #onChange: (files: string[]) => void;
  #changed = new Set<string>();
  #watched = new Set<string>();
  #root: string;
  #closed = false;

  constructor(entry: string, options: WatchOptions, onChange: (files: string[]) => void) {
    this.#root = path.dirname(path.resolve(entry));
    this.#debounce = options.debounce ?? options.debounceMs ?? 2;
    this.#onChange = onChange;
    const stability = options.stability ?? options.stabilityMs ?? 10;
    this.#watcher = watch(this.#root, {
      ignoreInitial: true,
      ignored: (p: string) => this.#ignored(p),
      awaitWriteFinish: { stabilityThreshold: stability, pollInterval: Math.max(5, Math.floor(stability / 4)) },
      atomic: true,
    });
    const onEvent = (file: string) => this.#queue(file);
    this.#watcher.on('add', onEvent).on('change', onEvent).on('unlink', onEvent);
  }

  /** Resolves once the initial scan is done and changes will be seen. */
  ready(): Promise<void> {
    return new Promise((resolve) => this.#watcher.once('ready', () => resolve()));
  }

  /** Also watch these files (bundle inputs outside the entry's directory). */
  track(files: readonly string[]): void {
    const extra = files.filter((f) => !f.startsWith(this.#root + path.sep) && !this.#watched.has(f) && !this.#ignored(f));
    for (const f of extra) this.#watched.add(f);
    if (extra.length > 0) this.#watcher.add(extra);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#watcher.close();
  }

  /**
   * Judged on the path relative to the plugin's folder: a plugin that itself lives under a folder named `build` or
   * `dist` (/srv/build/chat/plugin.ts) must still be watched.
   */
  #ignored(file: string): boolean {
    return IGNORED.test(path.relative(this.#root, path.resolve(file)));
  }

  #queue(file: string): void {
    if (this.#closed) return;
    this.#changed.add(file);
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      const files = [...this.#changed];
      this.#changed.clear();
      this.#onChange(files);
    }, this.#debounce);
  }
}
