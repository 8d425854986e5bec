/**
 * Tracked views of the Node built-ins through which plugin code opens things that outlive a call: timers, child
 * processes, servers, sockets, worker threads. Each view is the real module with its opening functions wrapped, so
 * the version's resources (resources.ts) know about what was opened and close it at retire.
 *
 * npm packages the plugin requires resolve normally and use the REAL modules: what they open is not tracked (see
 * docs/guide.md, "What a version leaves behind").
 */
import childProcess from 'node:child_process';
import dgram from 'node:dgram';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import timers from 'node:timers';
import tls from 'node:tls';
import { promisify } from 'node:util';
import workerThreads from 'node:worker_threads';
import { CHILD_KILL_GRACE_MS, type VersionResources } from './resources.js';
import type { TimerApi } from './timers.js';

type Fn = (...args: unknown[]) => unknown;
type ModuleView = Record<string | symbol, unknown>;

/** Builds the view of one built-in for one version. */
type Factory = (res: VersionResources, processView: NodeJS.Process) => unknown;

/** The tracked built-ins, by name without the `node:` prefix. */
export const TRACKED_MODULES: Record<string, Factory> = {
  timers: (res) => timersView(res.timers.api),
  'timers/promises': (res) => timerPromises(res.timers.api),
  process: (_res, view) => view,
  child_process: childProcessView,
  net: (res) => ({
    ...net,
    createServer: serverOpener(res, net.createServer as Fn),
    Server: trackedClass(res, net.Server, trackServer),
    connect: socketOpener(res, net.connect as Fn),
    createConnection: socketOpener(res, net.createConnection as Fn),
  }),
  tls: (res) => ({
    ...tls,
    createServer: serverOpener(res, tls.createServer as Fn),
    Server: trackedClass(res, tls.Server, trackServer),
    connect: socketOpener(res, tls.connect as Fn),
  }),
  http: (res) => httpView(res, http),
  https: (res) => httpView(res, https),
  http2: (res) => ({
    ...http2,
    createServer: serverOpener(res, http2.createServer as Fn),
    createSecureServer: serverOpener(res, http2.createSecureServer as Fn),
    connect: opener(res, http2.connect as Fn, (r, s) => r.track('socket', s as http2.ClientHttp2Session, 'close', destroy)),
  }),
  dgram: (res) => ({
    ...dgram,
    createSocket: opener(res, dgram.createSocket as Fn, (r, s) =>
      r.track('server', s as dgram.Socket, 'close', (d) => d.close()),
    ),
  }),
  worker_threads: (res) => ({
    ...workerThreads,
    Worker: trackedClass(res, workerThreads.Worker, (r, w) => r.track('worker', w, 'exit', (x) => void x.terminate())),
  }),
};

/** The view of `id` for this version, or undefined when `id` is not a tracked built-in. */
export function trackedModule(id: string, res: VersionResources, processView: NodeJS.Process): unknown {
  const name = id.startsWith('node:') ? id.slice(5) : id;
  const factory = Object.hasOwn(TRACKED_MODULES, name) ? TRACKED_MODULES[name] : undefined;
  return factory ? factory(res, processView) : undefined;
}

function timersView(api: TimerApi): ModuleView {
  return { ...timers, ...api, promises: timerPromises(api) };
}

/**
 * `timers/promises` on the version's tracker. A timer cleared at the switch never settles its promise, so a retired
 * version's `await setTimeout(…)` chain simply stops, and the GC frees it.
 */
function timerPromises(api: TimerApi): ModuleView {
  interface Options {
    signal?: AbortSignal;
    ref?: boolean;
  }
  const wait = <T>(schedule: (done: () => void) => NodeJS.Timeout | NodeJS.Immediate, cancel: (t: never) => void, value: T, options?: Options) =>
    new Promise<T>((resolve, reject) => {
      const signal = options?.signal;
      if (signal?.aborted) return reject(abortError(signal));
      const onAbort = () => {
        cancel(t as never);
        reject(abortError(signal!));
      };
      const t = schedule(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve(value);
      });
      if (options?.ref === false) t.unref();
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  const setTimeout = <T>(ms?: number, value?: T, options?: Options) =>
    wait((done) => api.setTimeout(done, ms), api.clearTimeout as (t: never) => void, value, options);
  const setImmediate = <T>(value?: T, options?: Options) =>
    wait((done) => api.setImmediate(done), api.clearImmediate as (t: never) => void, value, options);
  async function* setInterval<T>(ms?: number, value?: T, options?: Options): AsyncGenerator<T | undefined> {
    const signal = options?.signal;
    let pending = 0;
    let wake: (() => void) | undefined;
    const t = api.setInterval(() => {
      pending++;
      wake?.();
    }, ms);
    if (options?.ref === false) t.unref();
    const onAbort = () => wake?.();
    signal?.addEventListener('abort', onAbort);
    try {
      for (;;) {
        if (signal?.aborted) throw abortError(signal);
        if (pending === 0) await new Promise<void>((r) => (wake = r));
        wake = undefined;
        if (signal?.aborted) throw abortError(signal);
        pending--;
        yield value;
      }
    } finally {
      api.clearInterval(t);
      signal?.removeEventListener('abort', onAbort);
    }
  }
  return { setTimeout, setImmediate, setInterval, scheduler: { wait: (ms: number, o?: Options) => setTimeout(ms, undefined, o), yield: () => setImmediate() } };
}

/** The error Node's own timers/promises rejects with on abort. */
function abortError(signal: AbortSignal): Error {
  return Object.assign(new Error('The operation was aborted'), { name: 'AbortError', code: 'ABORT_ERR', cause: signal.reason as unknown });
}

function childProcessView(res: VersionResources): ModuleView {
  const track = (r: VersionResources, c: unknown) => trackChild(r, c as childProcess.ChildProcess);
  const spawn = opener(res, childProcess.spawn as Fn, track);
  const fork = opener(res, childProcess.fork as Fn, track);
  const exec = withPromisify(opener(res, childProcess.exec as Fn, track));
  const execFile = withPromisify(opener(res, childProcess.execFile as Fn, track));
  return { ...childProcess, spawn, fork, exec, execFile };
}

/** SIGTERM at retire, then SIGKILL after a grace period if it is still running. */
function trackChild(res: VersionResources, child: childProcess.ChildProcess): void {
  res.track('child', child, 'exit', (c) => {
    if (c.exitCode !== null || c.signalCode !== null) return;
    c.kill('SIGTERM');
    const timer = setTimeout(() => c.kill('SIGKILL'), CHILD_KILL_GRACE_MS);
    timer.unref();
    c.once('exit', () => clearTimeout(timer));
  });
}

/** `exec`/`execFile` promisify to `{ stdout, stderr }` through a custom symbol; keep that for the wrapped ones. */
function withPromisify(fn: Fn): Fn {
  const custom = (...args: unknown[]) => {
    let child: unknown;
    const p = new Promise((resolve, reject) => {
      child = fn(...args, (err: (Error & Record<string, unknown>) | null, stdout: unknown, stderr: unknown) => {
        if (err) reject(Object.assign(err, { stdout, stderr }));
        else resolve({ stdout, stderr });
      });
    });
    return Object.assign(p, { child });
  };
  return Object.assign(fn, { [promisify.custom]: custom });
}

function httpView(res: VersionResources, mod: typeof http | typeof https): ModuleView {
  const trackRequest = (r: VersionResources, req: unknown) => r.track('socket', req as http.ClientRequest, 'close', destroy);
  return {
    ...mod,
    createServer: serverOpener(res, mod.createServer as Fn),
    Server: trackedClass(res, mod.Server, trackServer),
    request: opener(res, mod.request as Fn, trackRequest),
    get: opener(res, mod.get as Fn, trackRequest),
  };
}

/** A server closes at retire, and the connections it accepted are destroyed: they would run old handlers. */
function trackServer(res: VersionResources, server: net.Server): void {
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  res.track('server', server, 'close', (srv) => {
    srv.close(() => {});
    for (const s of sockets) s.destroy();
  });
}

function destroy(x: { destroy(): unknown }): void {
  x.destroy();
}

/** Wrap a function that opens something: refuse after retire, call the real one, track what it returned. */
function opener(res: VersionResources, real: Fn, track: (res: VersionResources, opened: unknown) => void): Fn {
  return function (this: unknown, ...args: unknown[]) {
    res.assertOpen(`${real.name}()`);
    const opened = Reflect.apply(real, this, args);
    track(res, opened);
    return opened;
  };
}

function serverOpener(res: VersionResources, real: Fn): Fn {
  return opener(res, real, (r, s) => trackServer(r, s as net.Server));
}

function socketOpener(res: VersionResources, real: Fn): Fn {
  return opener(res, real, (r, s) => r.track('socket', s as net.Socket, 'close', destroy));
}

/** A subclass whose instances are tracked, for `new net.Server()` and `new Worker()`. */
function trackedClass<T extends object, A extends unknown[]>(
  res: VersionResources,
  Base: new (...args: A) => T,
  track: (res: VersionResources, obj: T) => void,
): new (...args: A) => T {
  return class extends (Base as new (...args: A) => object) {
    constructor(...args: A) {
      res.assertOpen(`new ${Base.name}()`);
      super(...args);
      track(res, this as unknown as T);
    }
  } as unknown as new (...args: A) => T;
}
