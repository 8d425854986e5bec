/**
 * Evaluates a CommonJS bundle with `vm.compileFunction`. Measured (DESIGN.md §4): ESM `import(url?v=n)` keeps every
 * version alive as a GC root, `vm.Script#runInThisContext` leaked through the compilation cache, and compileFunction
 * stayed flat over 500 reloads. So a version is a plain function scope the GC can free once nothing points into it.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';
import { HotlineError, messageOf } from '../errors.js';
import type { Bundle } from '../build/bundler.js';
import { StackMapper } from './source-map.js';
import { TimerTracker } from './timers.js';

/** What one evaluated bundle gives the host. */
export interface LoadedModule {
  exports: unknown;
  timers: TimerTracker;
  stack: StackMapper;
}

export interface LoadOptions {
  /** Modules served to the plugin's `require` before normal resolution, e.g. `hotline` itself. */
  builtins: Record<string, unknown>;
  /** Called for an error thrown by a tracked timer callback. */
  onTimerError: (err: unknown) => void;
  /** A label for stack traces, e.g. `chat@1.2.0#3`. */
  label: string;
}

// The names the bundle's wrapper function declares. Timer globals are shadowed so the version's timers are tracked
// and cleared when it is disposed (DESIGN.md §4).
const PARAMS = [
  'exports',
  'require',
  'module',
  '__filename',
  '__dirname',
  'setTimeout',
  'setInterval',
  'setImmediate',
  'clearTimeout',
  'clearInterval',
  'clearImmediate',
] as const;

/** Evaluate `bundle` and return its exports. Throws HOTLINE_E_PLUGIN_EVAL if the module body throws. */
export function loadBundle(bundle: Bundle, options: LoadOptions): LoadedModule {
  const filename = `hotline-plugin:${options.label}/${path.basename(bundle.entry)}.bundle.js`;
  const stack = new StackMapper(filename, bundle.map, path.dirname(bundle.entry));
  const timers = new TimerTracker(options.onTimerError);
  const baseRequire = createRequire(bundle.entry);
  const builtins = options.builtins;
  const pluginRequire = Object.assign((id: string): unknown => (id in builtins ? builtins[id] : baseRequire(id)), {
    resolve: baseRequire.resolve,
    cache: baseRequire.cache,
  });

  let fn: (...args: unknown[]) => void;
  try {
    fn = vm.compileFunction(bundle.code, [...PARAMS], { filename }) as (...args: unknown[]) => void;
  } catch (err) {
    throw new HotlineError('HOTLINE_E_PLUGIN_EVAL', `the plugin bundle does not compile: ${messageOf(err)}`, { cause: err });
  }
  const module = { exports: {} as unknown };
  const t = timers.api;
  try {
    fn(
      module.exports,
      pluginRequire,
      module,
      bundle.entry,
      path.dirname(bundle.entry),
      t.setTimeout,
      t.setInterval,
      t.setImmediate,
      t.clearTimeout,
      t.clearInterval,
      t.clearImmediate,
    );
  } catch (err) {
    timers.clearAll();
    stack.mapError(err);
    throw new HotlineError('HOTLINE_E_PLUGIN_EVAL', `the plugin threw while loading: ${messageOf(err)}`, { cause: err });
  }
  return { exports: module.exports, timers, stack };
}
