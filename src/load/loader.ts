/**
 * Evaluates a CommonJS bundle with `vm.compileFunction`. Measured (DESIGN.md §4): ESM `import(url?v=n)` keeps every
 * version alive as a GC root, `vm.Script#runInThisContext` leaked through the compilation cache, and compileFunction
 * stayed flat over 500 reloads. So a version is a plain function scope the GC can free once nothing points into it.
 *
 * The wrapper function's parameters shadow the globals through which plugin code reaches the host process: the timer
 * functions, `queueMicrotask`, `process`, `global` and `globalThis` (issue 11). Each is a tracked or guarded view
 * owned by the version's resources (resources.ts), so what the version starts is stopped with it and what it throws
 * is counted against it.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';
import { HotlineError, messageOf } from '../errors.js';
import type { Bundle } from '../build/bundler.js';
import { guardedProcess } from './guarded-process.js';
import { intrinsics } from './intrinsics.js';
import { liveVersions, pluginFilename, type LiveModule } from './live-versions.js';
import { pollutionError, sweepIntrinsics, sweepLiveVersions } from './pollution-sweep.js';
import { type ResourceCounts, VersionResources } from './resources.js';
import { StackMapper } from './source-map.js';
import type { TimerTracker } from './timers.js';
import { trackedModule } from './tracked-modules.js';

/** What one evaluated bundle gives the host. */
export interface LoadedModule {
  exports: unknown;
  /** The version's timers (also `resources.timers`). */
  timers: TimerTracker;
  /** Everything the version opened through tracked APIs. */
  resources: VersionResources;
  stack: StackMapper;
  /** The label in the bundle's filename, as given in LoadOptions. */
  label: string;
  /**
   * The Version that owns this module calls it. A module nobody claimed is released by the swapper when its shape is
   * refused, and also as soon as its timers are cleared, whichever comes first.
   */
  claim(): void;
  /** Close everything the module left open and forget it in the live registry. Idempotent. */
  release(): ResourceCounts;
}

export interface LoadOptions {
  /** Modules served to the plugin's `require` before normal resolution, e.g. `hotline` itself. */
  builtins: Record<string, unknown>;
  /**
   * Called for an error of plugin code the host caught outside a handler: a tracked timer, microtask, tick or process
   * listener threw, a forbidden call (HOTLINE_E_PLUGIN_FORBIDDEN), an escaped error attributed to this module
   * (HOTLINE_E_PLUGIN_ESCAPED), or a pollution (HOTLINE_E_PLUGIN_POLLUTED).
   */
  onTimerError: (err: unknown) => void;
  /** A label for stack traces, e.g. `v3`. No `/`, whitespace or parentheses. */
  label: string;
  /** The version's seq, for error attribution; by default read from a `v<seq>` label. */
  seq?: number;
}

// The names the bundle's wrapper function declares. Timer globals are shadowed so the version's timers are tracked
// and cleared when it is disposed (DESIGN.md §4); the rest, so its process and global are guarded views (issue 11).
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
  'queueMicrotask',
  'process',
  'global',
  'globalThis',
] as const;

/** Evaluate `bundle` and return its exports. Throws HOTLINE_E_PLUGIN_EVAL if the module body throws. */
export function loadBundle(bundle: Bundle, options: LoadOptions): LoadedModule {
  // The snapshot is taken before the first plugin runs; the running version's pollution must not break this load.
  intrinsics.arm();
  sweepLiveVersions();

  const label = options.label;
  const filename = pluginFilename(label, path.basename(bundle.entry));
  const stack = new StackMapper(filename, bundle.map, path.dirname(bundle.entry));
  let claimed = false;
  const resources = new VersionResources(options.onTimerError, () => {
    if (!claimed) release();
  });
  const live: LiveModule = { label, seq: options.seq ?? seqOf(label), report: (err) => options.onTimerError(err) };
  const release = (): ResourceCounts => {
    liveVersions.unregister(live);
    return resources.release();
  };
  const processView = guardedProcess(resources);
  const globalView = guardedGlobal(resources, processView);
  const pluginRequire = createPluginRequire(bundle.entry, options.builtins, resources, processView);

  let fn: (...args: unknown[]) => void;
  try {
    fn = vm.compileFunction(bundle.code, [...PARAMS], { filename }) as (...args: unknown[]) => void;
  } catch (err) {
    throw new HotlineError('HOTLINE_E_PLUGIN_EVAL', `the plugin bundle does not compile: ${messageOf(err)}`, { cause: err });
  }
  liveVersions.register(live);
  const module = { exports: {} as unknown };
  const t = resources.timers.api;
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
      globalView.queueMicrotask,
      processView,
      globalView,
      globalView,
    );
  } catch (err) {
    release();
    stack.mapError(err);
    sweepIntrinsics([]);
    throw new HotlineError('HOTLINE_E_PLUGIN_EVAL', `the plugin threw while loading: ${messageOf(err)}`, { cause: err });
  }
  const found = sweepIntrinsics([]);
  if (found.length > 0) {
    release();
    throw pollutionError(found, 'by the plugin module body; the version is refused');
  }
  return { exports: module.exports, timers: resources.timers, resources, stack, label, claim: () => (claimed = true), release };
}

/** The plugin's `require`: hotline's builtins, then tracked built-ins, then normal resolution from the entry. */
function createPluginRequire(
  entry: string,
  builtins: Record<string, unknown>,
  resources: VersionResources,
  processView: NodeJS.Process,
): NodeJS.Require {
  const baseRequire = createRequire(entry);
  // One view per built-in per version, made on first require, so `require('net') === require('node:net')` holds.
  const views = new Map<string, unknown>();
  const pluginRequire = (id: string): unknown => {
    if (Object.hasOwn(builtins, id)) return builtins[id];
    const name = id.startsWith('node:') ? id.slice(5) : id;
    if (views.has(name)) return views.get(name);
    const view = trackedModule(name, resources, processView);
    if (view === undefined) return baseRequire(id);
    views.set(name, view);
    return view;
  };
  return Object.assign(pluginRequire, { resolve: baseRequire.resolve, cache: baseRequire.cache, main: baseRequire.main, extensions: baseRequire.extensions });
}

/**
 * The plugin's `globalThis`/`global`: the real global, except that its timers, `queueMicrotask` and `process` are the
 * version's. A Proxy rather than an object inheriting from the global, so that writes (`globalThis.x = …`) still
 * reach the one real global, as plugins and their tests expect. Only explicit `globalThis.x` reads pay for it: bare
 * identifiers resolve through the wrapper's parameters or the real global scope.
 */
function guardedGlobal(res: VersionResources, processView: NodeJS.Process): typeof globalThis {
  const own = Object.create(null) as Record<string | symbol, unknown>;
  Object.assign(own, res.timers.api, {
    process: processView,
    queueMicrotask: (fn: () => void) => {
      if (typeof fn !== 'function') return queueMicrotask(fn);
      queueMicrotask(() => res.call(fn, []));
    },
  });
  const view = new Proxy(globalThis, {
    get(target, key) {
      if (key in own) return own[key];
      return Reflect.get(target, key);
    },
  });
  own.global = view;
  own.globalThis = view;
  return view;
}

function seqOf(label: string): number {
  const m = /^v(\d+)$/.exec(label);
  return m ? Number(m[1]) : -1;
}
