/**
 * The worker thread of one worker-mode version (issue 11): loads the bundle with the same loader as inline mode
 * (tracked timers, guarded `process`, intrinsics), runs the plugin's handlers for the events the host sends, and
 * sends back what they did (send, close, state assignments, broadcasts, errors, logs), batched once per turn.
 *
 * The host keeps the sockets, the per-connection order and the sessions; here there are only mirrors of the
 * connections (id, transport, address, `state`), so nothing a version does can touch a socket.
 *
 * An uncaught exception is left to kill the thread (the host restores the last known good version from its last
 * checkpoint: the version's memory may be inconsistent). An unhandled rejection is counted against the version, as
 * inline (HOTLINE_E_PLUGIN_ESCAPED), and the thread goes on.
 */
import type { MessagePort } from 'node:worker_threads';
import { workerData } from 'node:worker_threads';
import pino from 'pino';
import { closeFrameProblem } from '../connection/close-codes.js';
import { HotlineError, messageOf } from '../errors.js';
import { loadBundle, type LoadedModule } from '../load/loader.js';
import { ConnHandle, type HandleTarget } from '../plugin/conn-handle.js';
import type { CloseInfo, Conn, MessageData, PluginContext, PluginDefinition, TransportKind } from '../plugin/contract.js';
import * as pluginApi from '../plugin/public-api.js';
import { defaultExportOf, validatePlugin } from '../plugin/validate.js';
import {
  AC_BROADCAST, AC_CLOSE, AC_DONE, AC_ERROR, AC_FAIL, AC_HUNG, AC_LOG, AC_SEND, AC_STATE, type CallMessage, EV_ATTACH, EV_CLOSE, EV_MESSAGE, EV_OPEN,
  EVENT_STRIDE, type MigrateArg, SAB_HEARTBEAT, SAB_RUNNING, type WorkerBoot, type WorkerReply, wireError,
} from './worker-protocol.js';

const boot = (workerData as { boot: WorkerBoot; port: MessagePort }).boot;
const port = (workerData as { boot: WorkerBoot; port: MessagePort }).port;
const sab = new Int32Array(boot.sab);

let outbox: unknown[] = [];
let flushScheduled = false;

function push(op: number, a: unknown, b: unknown): void {
  outbox.push(op, a, b);
  if (!flushScheduled) {
    flushScheduled = true;
    // One batch per turn: the sync handlers of a whole event batch and the async ones that settle in its microtasks.
    setImmediate(flush);
  }
}

function flush(): void {
  flushScheduled = false;
  if (outbox.length === 0) return;
  const batch = outbox;
  outbox = [];
  try {
    port.postMessage(batch);
  } catch {
    // A send or a state the structured clone refuses (a function in conn.state): count it, keep the rest.
    const kept: unknown[] = [];
    for (let i = 0; i < batch.length; i += 3) {
      try {
        structuredClone([batch[i + 1], batch[i + 2]]);
        kept.push(batch[i], batch[i + 1], batch[i + 2]);
      } catch (e) {
        kept.push(AC_ERROR, wireError(new HotlineError('HOTLINE_E_STATE_CLONE', `a value cannot leave the worker: ${messageOf(e)}`)), undefined);
        // The handler still finished: its connection must move on.
        if (batch[i] === AC_DONE || batch[i] === AC_FAIL) kept.push(batch[i], batch[i + 1], undefined);
      }
    }
    port.postMessage(kept);
  }
}

function reply(msg: WorkerReply): void {
  // What the handlers did before this call must reach the host first (a checkpoint then reflects it).
  flush();
  try {
    port.postMessage(msg);
  } catch (err) {
    if (msg.t !== 'result') throw err;
    port.postMessage({ t: 'result', id: msg.id, ok: false, error: wireError(new HotlineError('HOTLINE_E_STATE_CLONE', `the result cannot leave the worker: ${messageOf(err)}`)) });
  }
}

/** A connection as this thread knows it: what the plugin's handle forwards to. */
class ConnMirror implements HandleTarget {
  readonly handle: ConnHandle;
  #state: unknown = undefined;
  open = true;

  constructor(
    readonly id: string,
    readonly transport: TransportKind,
    readonly remoteAddress: string,
  ) {
    this.handle = new ConnHandle(this);
  }

  get state(): unknown {
    return this.#state;
  }

  set state(next: unknown) {
    this.#state = next;
    // The host keeps a copy (sessions, restores); mutations inside the object reach it at the next checkpoint.
    push(AC_STATE, this.id, next);
  }

  /** Set without telling the host: the host gave it. */
  init(state: unknown): void {
    this.#state = state;
  }

  send(data: MessageData): boolean {
    if (!this.open) return false;
    if (typeof data !== 'string' && !(data instanceof Uint8Array)) {
      throw new TypeError(`conn.send() takes a string or a Uint8Array, got ${typeof data}`);
    }
    push(AC_SEND, this.id, data);
    return true;
  }

  join(): boolean {
    throw roomsRefused();
  }

  leave(): boolean {
    throw roomsRefused();
  }

  close(code = 1000, reason = ''): void {
    const problem = closeFrameProblem(code, reason);
    if (problem) throw new HotlineError('HOTLINE_E_CLOSE_CODE', `connection ${this.id}: ${problem}`);
    if (!this.open) return;
    this.open = false;
    push(AC_CLOSE, this.id, [code, reason]);
  }
}

/**
 * Rooms are host state, and a worker-mode version does not reach them yet: refused by name rather than half-working
 * (docs/guide.md, "Inline or worker isolation").
 */
function roomsRefused(): HotlineError {
  return new HotlineError('HOTLINE_E_ROOM_WORKER', 'rooms (conn.join, ctx.to, ctx.rooms, ctx.members) are not available in worker isolation yet; run this plugin inline');
}

const conns = new Map<string, ConnMirror>();
let state: unknown = undefined;
const abort = new AbortController();

function reportError(err: unknown): void {
  module?.stack.mapError(err);
  push(AC_ERROR, wireError(err), undefined);
}

const log = pino(
  { level: boot.logLevel, base: undefined, timestamp: false },
  {
    write(line: string) {
      push(AC_LOG, 0, line);
    },
  },
);

let module: LoadedModule | undefined;
let def: PluginDefinition;
let ctx: PluginContext;

function start(): void {
  try {
    module = loadBundle(
      { code: boot.code, map: boot.map, entry: boot.entry, hash: boot.hash, inputs: [] },
      { builtins: { hotline: pluginApi }, label: boot.label, seq: boot.seq, onTimerError: reportError },
    );
    def = validatePlugin(defaultExportOf(module.exports));
    module.claim();
  } catch (err) {
    module?.stack.mapError(err);
    port.postMessage({ t: 'load-error', error: wireError(err) } satisfies WorkerReply);
    return;
  }
  const timers = module.timers.api;
  const connections: Iterable<Conn> = {
    *[Symbol.iterator]() {
      for (const c of conns.values()) if (c.open) yield c.handle;
    },
  };
  ctx = {
    get state() {
      return state;
    },
    set state(next: unknown) {
      state = next;
    },
    version: def.version,
    connections,
    broadcast(data, filter, options) {
      const all = options?.allVersions === true;
      if (all && filter) {
        // The other versions' connections, and their conn.state, live in other threads: a filter cannot run on them
        // here, synchronously. Refused by name rather than filtering this version's own connections only.
        throw new HotlineError('HOTLINE_E_BROADCAST_WORKER', `${boot.label}: ctx.broadcast(data, filter, { allVersions: true }) cannot run in worker isolation; broadcast without a filter, or per version`);
      }
      if (!filter) {
        // The host fans it out (to its own connections, or with allVersions to every live version's): the count is
        // this version's own open connections.
        let n = 0;
        for (const c of conns.values()) if (c.open) n++;
        push(AC_BROADCAST, data, all);
        return n;
      }
      let n = 0;
      for (const c of conns.values()) if (c.open && filter(c.handle) && c.send(data)) n++;
      return n;
    },
    to() {
      throw roomsRefused();
    },
    toConnection() {
      throw roomsRefused();
    },
    rooms() {
      throw roomsRefused();
    },
    members() {
      return Promise.reject(roomsRefused());
    },
    log,
    signal: abort.signal,
    setTimeout: (fn, ms) => timers.setTimeout(fn, ms),
    setInterval: (fn, ms) => timers.setInterval(fn, ms),
    clearTimeout: (t) => timers.clearTimeout(t),
    clearInterval: (t) => timers.clearInterval(t),
    link() {
      // issue 15: links are inline-only for now (docs/api.md, "Links"): refused by name, not a missing function.
      throw new HotlineError('HOTLINE_E_LINK_WORKER', `${boot.label}: ctx.link() is not available in worker mode; run this plugin inline`);
    },
  };
  process.on('unhandledRejection', (reason) => {
    reportError(new HotlineError('HOTLINE_E_PLUGIN_ESCAPED', `unhandled rejection: ${messageOf(reason)}`, { cause: reason }));
  });
  setInterval(beat, boot.heartbeatMs);
  port.on('message', onMessage);
  port.postMessage({ t: 'ready', name: def.name, version: def.version } satisfies WorkerReply);
}

/** Async handlers in flight, by seq: when each started, on this thread's clock. Reported once past hangTimeout. */
const asyncSince = new Map<number, number>();

function beat(): void {
  Atomics.add(sab, SAB_HEARTBEAT, 1);
  if (asyncSince.size === 0) return;
  const now = performance.now();
  const hung: number[] = [];
  for (const [seq, since] of asyncSince) {
    if (now - since <= boot.hangTimeout) continue;
    hung.push(seq);
    asyncSince.delete(seq);
  }
  if (hung.length > 0) push(AC_HUNG, hung, undefined);
}

function onMessage(msg: unknown): void {
  if (Array.isArray(msg)) return runEvents(msg);
  const call = msg as CallMessage;
  if (call?.t !== 'call' || !Number.isSafeInteger(call.id)) return;
  void runCall(call);
}

function runEvents(ev: unknown[]): void {
  for (let i = 0; i + EVENT_STRIDE <= ev.length; i += EVENT_STRIDE) {
    if (ev[i] === EV_ATTACH) attach(ev[i + 2] as string, ev[i + 3] as [string, string], ev[i + 4]);
    else runEvent(ev[i] as number, ev[i + 1] as number, ev[i + 2] as string, ev[i + 3], ev[i + 4]);
  }
}

/** A connection opened elsewhere (a restored session): a mirror with its state, no handler runs. */
function attach(id: string, [transport, remoteAddress]: [string, string], state: unknown): void {
  let c = conns.get(id);
  if (!c) {
    c = new ConnMirror(id, transport as TransportKind, remoteAddress);
    conns.set(id, c);
  }
  c.init(state);
}

function runEvent(op: number, seq: number, id: string, a: unknown, b: unknown): void {
  let c = conns.get(id);
  let result: unknown;
  Atomics.store(sab, SAB_RUNNING, seq);
  try {
    if (op === EV_OPEN) {
      if (!c) {
        c = new ConnMirror(id, a as TransportKind, b as string);
        conns.set(id, c);
      }
      result = def.onOpen?.(c.handle, ctx);
    } else if (op === EV_MESSAGE) {
      if (!c) throw new HotlineError('HOTLINE_E_WORKER_PROTOCOL', `a message for unknown connection ${id}`);
      result = def.onMessage(c.handle, a as MessageData, ctx);
    } else if (op === EV_CLOSE) {
      if (c) {
        c.open = false;
        conns.delete(id);
        const info: CloseInfo = { code: a as number, reason: b as string };
        result = def.onClose?.(c.handle, info, ctx);
      }
    }
  } catch (err) {
    Atomics.store(sab, SAB_RUNNING, 0);
    fail(seq, err);
    return;
  }
  Atomics.store(sab, SAB_RUNNING, 0);
  if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
    asyncSince.set(seq, performance.now());
    (result as PromiseLike<unknown>).then(
      () => {
        asyncSince.delete(seq);
        push(AC_DONE, seq, undefined);
      },
      (err: unknown) => {
        asyncSince.delete(seq);
        fail(seq, err);
      },
    );
  } else {
    push(AC_DONE, seq, undefined);
  }
}

function fail(seq: number, err: unknown): void {
  module?.stack.mapError(err);
  push(AC_FAIL, seq, wireError(err));
}

async function runCall(call: CallMessage): Promise<void> {
  try {
    const value = await perform(call);
    reply({ t: 'result', id: call.id, ok: true, value });
  } catch (err) {
    module?.stack.mapError(err);
    reply({ t: 'result', id: call.id, ok: false, error: wireError(err) });
  }
}

async function perform(call: CallMessage): Promise<unknown> {
  switch (call.op) {
    case 'init':
      if (def.init) state = await def.init(ctx);
      return undefined;
    case 'check':
      await def.check?.(ctx);
      return undefined;
    case 'migrate':
      return migrate(call.arg as MigrateArg);
    case 'adopt':
      return adopt(call.arg as MigrateArg);
    case 'forget':
      for (const id of call.arg as string[]) conns.delete(id);
      return undefined;
    case 'export':
      return { version: def.version, state, connStates: [...conns.values()].map((c) => [c.id, c.state]) };
    case 'stop':
      module?.resources.stop();
      return undefined;
    case 'dispose':
      await def.dispose?.(ctx);
      abort.abort(new HotlineError('HOTLINE_E_SWAP_CLOSED', `${def.name}@${def.version} was disposed`));
      return undefined;
  }
}

/**
 * issue 12: connections moving here from another live version, which this one serves beside: mirrors for them and
 * `migrateConnection` for each, the global state untouched. A throw removes the mirrors it added: nothing changed.
 */
function adopt(arg: MigrateArg): Array<[string, unknown]> {
  const added: string[] = [];
  const out: Array<[string, unknown]> = [];
  try {
    for (const [id, transport, remoteAddress, cs] of arg.conns) {
      let c = conns.get(id);
      if (!c) {
        c = new ConnMirror(id, transport as TransportKind, remoteAddress);
        conns.set(id, c);
        added.push(id);
      }
      let next = cs;
      if (def.migrateConnection) {
        try {
          next = def.migrateConnection(cs, arg.from);
        } catch (err) {
          module?.stack.mapError(err);
          throw new HotlineError('HOTLINE_E_MIGRATE_CONNECTION', `migrateConnection() threw for connection ${id}: ${messageOf(err)}`, { cause: err });
        }
      }
      c.init(next);
      out.push([id, next]);
    }
  } catch (err) {
    for (const id of added) conns.delete(id);
    throw err;
  }
  return out;
}

async function migrate(arg: MigrateArg): Promise<Array<[string, unknown]>> {
  const from = arg.from;
  for (const [id, transport, remoteAddress, cs] of arg.conns) {
    let c = conns.get(id);
    if (!c) {
      c = new ConnMirror(id, transport as TransportKind, remoteAddress);
      conns.set(id, c);
    }
    c.init(cs);
  }
  state = def.migrate ? await def.migrate(from, ctx) : from.state;
  const out: Array<[string, unknown]> = [];
  for (const [id] of arg.conns) {
    const c = conns.get(id)!;
    if (!def.migrateConnection) {
      out.push([id, c.state]);
      continue;
    }
    try {
      c.init(def.migrateConnection(c.state, from));
    } catch (err) {
      module?.stack.mapError(err);
      throw new HotlineError('HOTLINE_E_MIGRATE_CONNECTION', `migrateConnection() threw for connection ${id}: ${messageOf(err)}`, { cause: err });
    }
    out.push([id, c.state]);
  }
  return out;
}

start();
