/**
 * The `process` plugin code sees: the bundle wrapper's `process` parameter, `globalThis.process` and
 * `require('process')` all give this view. Reads go to the real process (`env`, `pid`, `hrtime`, `memoryUsage`, …).
 * What would end the host or change how it dies is refused with HOTLINE_E_PLUGIN_FORBIDDEN, counted against the
 * version: before this, `process.exit(3)` in a handler closed every client with 1006 (issue 11). Listeners are tracked
 * per version and removed when it stops, and `nextTick` callbacks are guarded like microtasks.
 */
import type { VersionResources } from './resources.js';

type Listener = (...args: unknown[]) => unknown;

/** Build the guarded view of `process` for one version. */
export function guardedProcess(res: VersionResources): NodeJS.Process {
  const hostPids = (pid: unknown): boolean => {
    const n = Number(pid);
    // 0 and negative pids signal process groups, which include the host (and its supervisor).
    return !Number.isFinite(n) || n <= 0 || n === process.pid || n === process.ppid;
  };
  // eslint-disable-next-line prefer-const -- the overrides return the view, which needs them first.
  let view: NodeJS.Process;
  const listen = (method: 'on' | 'once' | 'prependListener' | 'prependOnceListener') =>
    function (event: string | symbol, listener: Listener): NodeJS.Process {
      res.addProcessListener(method, event, listener);
      return view;
    };
  const remove = (event: string | symbol, listener: Listener): NodeJS.Process => {
    res.removeProcessListener(event, listener);
    return view;
  };
  const overrides: Record<string | symbol, unknown> = Object.assign(Object.create(null) as object, {
    exit: (code?: unknown) => res.forbidden(`process.exit(${code === undefined ? '' : String(code)})`),
    reallyExit: (code?: unknown) => res.forbidden(`process.reallyExit(${code === undefined ? '' : String(code)})`),
    abort: () => res.forbidden('process.abort()'),
    kill: (pid: number, signal?: string | number) => {
      if (hostPids(pid)) res.forbidden(`process.kill(${String(pid)})`);
      return process.kill(pid, signal);
    },
    setUncaughtExceptionCaptureCallback: () => res.forbidden('process.setUncaughtExceptionCaptureCallback()'),
    on: listen('on'),
    addListener: listen('on'),
    once: listen('once'),
    prependListener: listen('prependListener'),
    prependOnceListener: listen('prependOnceListener'),
    off: remove,
    removeListener: remove,
    removeAllListeners: (event?: string | symbol) => {
      res.removeProcessListeners(event);
      return view;
    },
    listeners: (event: string | symbol) => res.processListeners(event),
    nextTick: (fn: Listener, ...args: unknown[]) => {
      if (typeof fn !== 'function') return process.nextTick(fn);
      process.nextTick(runTick, res, fn, args);
    },
  });
  view = new Proxy(process, {
    get(target, key) {
      if (key in overrides) return overrides[key];
      return Reflect.get(target, key);
    },
    set(target, key, value) {
      // exitCode decides how the host exits: not the plugin's to set.
      if (key === 'exitCode') res.forbidden('setting process.exitCode');
      return Reflect.set(target, key, value);
    },
  });
  return view;
}

// One shared function instead of a closure per tick (STYLE.md 7).
function runTick(res: VersionResources, fn: Listener, args: unknown[]): void {
  res.call(fn, args);
}
