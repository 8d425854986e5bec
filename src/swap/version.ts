/**
 * One loaded build of a plugin: its definition, its global state, its tracked timers and its abort signal. It is the
 * dispatch target while current. Once retired it refuses to run plugin code, so nothing of an old version runs after
 * the switch, and the host drops every reference to it so the GC can free its module.
 */
import type { Logger } from 'pino';
import type { Bundle } from '../build/bundler.js';
import type { Connection } from '../connection/connection.js';
import type { Dispatcher } from '../connection/dispatcher.js';
import { LatencySample } from '../connection/latency-sample.js';
import { type ErrorCode, HotlineError, isHotlineError, messageOf } from '../errors.js';
import type { LoadedModule } from '../load/loader.js';
import { liveVersions } from '../load/live-versions.js';
import { sweepIntrinsics } from '../load/pollution-sweep.js';
import type { ResourceCounts } from '../load/resources.js';
import type { LinkEvent, LinkTarget } from '../links/link.js';
import { linksOf } from '../links/link-table.js';
import type { CloseInfo, Conn, Link, MessageData, PluginContext, PluginDefinition, PreviousVersion, Recipients } from '../plugin/contract.js';
import type { ExportedState, MigratedState, RuntimeHooks, VersionRuntime, VersionStats } from '../runtime/version-runtime.js';
import { checkRoomName } from '../rooms/room-name.js';
import { migrateConnectionStates, migrateState } from './migrate-state.js';

export type { VersionStats } from '../runtime/version-runtime.js';
/** @internal */
export type VersionHooks = RuntimeHooks;

/** Codes plugin containment reports with (issue 11): kept as they are instead of becoming HOTLINE_E_HANDLER. */
const CONTAINMENT_CODES: ReadonlySet<ErrorCode> = new Set([
  'HOTLINE_E_PLUGIN_FORBIDDEN',
  'HOTLINE_E_PLUGIN_ESCAPED',
  'HOTLINE_E_PLUGIN_POLLUTED',
  // issue 11 (inline backstops): an async handler abandoned at hangTimeout (connection.ts).
  'HOTLINE_E_HANDLER_HUNG',
]);

/**
 * Errors already counted. A forbidden call is counted where it is refused, and then usually thrown through a handler,
 * which reports it again: it must count once.
 */
const counted = new WeakSet<object>();

/** @internal A loaded inline version (see the file comment); only its VersionStats are public. */
export class Version implements VersionRuntime, LinkTarget {
  readonly isolation = 'inline' as const;
  readonly def: PluginDefinition;
  readonly bundle: Bundle;
  readonly stats: VersionStats;
  readonly ctx: PluginContext;
  readonly log: Logger;
  state: unknown = undefined;
  /** issue 12: sampled handler latency, for status's p99. */
  readonly latency = new LatencySample();
  #module: LoadedModule;
  #abort = new AbortController();
  #retired = false;
  #hooks: VersionHooks;
  #dispatcher: Dispatcher;

  constructor(
    seq: number,
    def: PluginDefinition,
    bundle: Bundle,
    module: LoadedModule,
    dispatcher: Dispatcher,
    log: Logger,
    hooks: VersionHooks,
  ) {
    this.def = def;
    this.bundle = bundle;
    this.#module = module;
    module.claim();
    this.#hooks = hooks;
    this.#dispatcher = dispatcher;
    this.log = log.child({ plugin: def.name, version: def.version, seq });
    this.stats = { seq, name: def.name, version: def.version, hash: bundle.hash, loadedAt: Date.now(), messages: 0, errors: 0, isolation: 'inline' };
    this.ctx = createContext(this, dispatcher, module);
  }

  get label(): string {
    return `${this.def.name}@${this.def.version}`;
  }

  get name(): string {
    return this.def.name;
  }

  get version(): string {
    return this.def.version;
  }

  get retired(): boolean {
    return this.#retired;
  }

  init(): unknown {
    const init = this.def.init;
    if (!init) return undefined;
    const result = init(this.ctx);
    if (!(result instanceof Promise)) {
      this.state = result;
      return undefined;
    }
    return result.then((state) => {
      // A late init (after hookTimeout) belongs to a version the swapper already retired.
      if (!this.#retired) this.state = state;
    });
  }

  check(): unknown {
    return this.def.check?.(this.ctx);
  }

  async migrate(from: PreviousVersion, connections: Iterable<Connection>, hookTimeout: number): Promise<MigratedState> {
    const { state, connStates } = await migrateState(this, from, connections, hookTimeout);
    // Not serving yet: a failure after this point retires the version with its state.
    this.state = state;
    return { connStates };
  }

  /** issue 12: `migrateConnection` for connections moving here from another live version (migrate-state.ts). */
  adoptConnections(from: PreviousVersion, connections: Iterable<Connection>): Promise<Array<[Connection, unknown]>> {
    try {
      return Promise.resolve(migrateConnectionStates(this, from, connections));
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  exportState(): Promise<ExportedState> {
    return Promise.resolve({ version: this.def.version, state: this.state });
  }

  serving(): void {
    // Inline: nothing runs beside the dispatch.
  }

  dispose(): unknown {
    return this.def.dispose?.(this.ctx);
  }

  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /** Tracked timers still scheduled by this version. */
  get timerCount(): number {
    return this.#module.timers.size;
  }

  /** What the version still holds through tracked APIs: timers, process listeners, children, servers, … */
  get resources(): ResourceCounts {
    return this.#module.resources.counts();
  }

  open(conn: Connection): unknown {
    if (this.#retired) return undefined;
    return this.def.onOpen?.(conn.handle, this.ctx);
  }

  message(conn: Connection, data: MessageData): unknown {
    if (this.#retired) return undefined;
    this.stats.messages++;
    return this.def.onMessage(conn.handle, data, this.ctx);
  }

  close(conn: Connection, info: CloseInfo): unknown {
    if (this.#retired) return undefined;
    return this.def.onClose?.(conn.handle, info, this.ctx);
  }

  /** issue 15: one event of a link this version claimed (src/links/link.ts dispatches it in order). */
  linkEvent(event: LinkEvent, link: Link): unknown {
    if (this.#retired) return undefined;
    const def = this.def;
    switch (event.kind) {
      case 'open':
        return def.onLinkOpen?.(link, this.ctx);
      case 'reconnect':
        return def.onLinkReconnect?.(link, this.ctx);
      case 'message':
        // Counted like a connection's message: probation weighs link errors against link traffic too.
        this.stats.messages++;
        return def.onLinkMessage?.(link, event.data, this.ctx);
      case 'close':
        return def.onLinkClose?.(link, event.info, this.ctx);
    }
  }

  /** issue 15: a link claimed from the serving version carries its state through the plugin's migrateLink. */
  migrateLink(prevLinkState: unknown, prev: PreviousVersion): unknown {
    return this.def.migrateLink ? this.def.migrateLink(prevLinkState, prev) : prevLinkState;
  }

  handlerError(err: unknown, conn?: Connection): void {
    if (typeof err === 'object' && err !== null) {
      if (counted.has(err)) return;
      counted.add(err);
    }
    let coded: HotlineError;
    if (isHotlineError(err) && CONTAINMENT_CODES.has(err.code)) {
      this.#module.stack.mapError(err.cause);
      coded = new HotlineError(err.code, `${this.label}: ${err.message}`, { cause: err.cause ?? err });
    } else {
      this.#module.stack.mapError(err);
      coded = new HotlineError('HOTLINE_E_HANDLER', `${this.label}: ${messageOf(err)}`, { cause: err });
    }
    this.stats.errors++;
    this.stats.lastError = { code: coded.code, message: coded.message };
    this.#hooks.onHandlerError(this, coded, conn);
  }

  /** Map a plugin error's stack to the TypeScript sources. */
  mapError<T>(err: T): T {
    return this.#module.stack.mapError(err);
  }

  /**
   * Stop everything of the version that runs by itself: its timers (refusing new ones) and its `process` listeners.
   * Called at the switch, before `dispose()`, so an async dispose cannot leave old code firing next to the new version.
   */
  stopTimers(): void {
    this.#module.resources.stop();
  }

  /**
   * Retire the version: stop it, abort its signal, close the child processes, servers, sockets and workers it left
   * open, repair any pollution of the built-ins (counted against it), and refuse further plugin calls. `dispose()` of
   * the plugin, if any, is the caller's job, before this.
   */
  retire(): void {
    if (this.#retired) return;
    this.#retired = true;
    const module = this.#module;
    const live = liveVersions.get(module.label);
    const left = module.release();
    const leftOpen = left.child + left.server + left.socket + left.worker;
    if (leftOpen > 0) {
      this.log.info({ left }, `${this.label}: closed ${leftOpen} resource(s) the version left open`);
    }
    if (live) sweepIntrinsics([live], 'by the retired version');
    // issue 15: the links only this version claimed close now (src/links/link-table.ts, the rule).
    linksOf(this.#dispatcher).release(this);
    this.#abort.abort(new HotlineError('HOTLINE_E_SWAP_CLOSED', `${this.label} was disposed`));
  }
}

function createContext(v: Version, d: Dispatcher, module: LoadedModule): PluginContext {
  const timers = module.timers.api;
  // Plugins get handles (src/plugin/conn-handle.ts), never the host's Connection: in hooks, here and in filters.
  // issue 12: scoped to the version's own connections. With pinning, another live version's connections speak another
  // protocol (the reason to pin at all): a v2 broadcast must not reach a v1 client, nor v2 code read v1's conn.state
  // shapes. `broadcast(data, filter, { allVersions: true })` reaches everyone when the payload is understood by all.
  const connections: Iterable<Conn> = {
    *[Symbol.iterator]() {
      for (const conn of d.connections.values()) if (conn.isOpen && conn.runtime === v) yield conn.handle;
    },
  };
  return {
    get state() {
      return v.state;
    },
    set state(next: unknown) {
      v.state = next;
    },
    get version() {
      return v.def.version;
    },
    connections,
    broadcast(data, filter, options) {
      // A retired version's leftover callbacks must not reach clients of the new one.
      if (v.retired) return 0;
      const all = options?.allVersions === true;
      let n = 0;
      for (const conn of d.connections.values()) {
        if (conn.isOpen && (all || conn.runtime === v) && (!filter || filter(conn.handle)) && conn.send(data)) n++;
      }
      return n;
    },
    to(room) {
      checkRoomName(room);
      const recipients: Recipients = {
        send(data, options) {
          if (v.retired) return 0;
          // The handle names a connection; the registry holds Connections: one lookup per delivery, not per member.
          const except = options?.except === undefined ? undefined : d.connections.get(options.except.id);
          return d.rooms.deliver(room, data, except);
        },
      };
      return recipients;
    },
    toConnection(id) {
      if (typeof id !== 'string') throw new TypeError(`ctx.toConnection() takes a connection id (a string), got ${typeof id}`);
      return {
        send(data, options) {
          if (v.retired) return 0;
          const conn = d.connections.get(id);
          if (options?.except !== undefined && options.except.id === id) return 0;
          // issue 13: not open here; with a cluster, the node that has it delivers it (0: not queued on this node).
          if (!conn) {
            d.rooms.sendElsewhere(id, data);
            return 0;
          }
          return conn.send(data) ? 1 : 0;
        },
      };
    },
    rooms(conn) {
      const c = d.connections.get(conn.id);
      return c ? d.rooms.roomsOf(c) : [];
    },
    members(room) {
      try {
        return d.rooms.members(room);
      } catch (err) {
        return Promise.reject(err);
      }
    },
    get log() {
      return v.log;
    },
    get signal() {
      return v.signal;
    },
    setTimeout: (fn, ms) => timers.setTimeout(fn, ms),
    setInterval: (fn, ms) => timers.setInterval(fn, ms),
    clearTimeout: (t) => timers.clearTimeout(t),
    clearInterval: (t) => timers.clearInterval(t),
    link: (name, options) => linksOf(d).claim(v, name, options) as never,
  };
}
