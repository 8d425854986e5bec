/**
 * The plugin contract, api 1 (DESIGN.md §2). Plugins see only these types: never a socket, never the host.
 */
import type { Logger } from 'pino';

/** The host API major this build of hotline implements. A plugin with another `api` is refused at load. */
export const HOST_API = 1;

/** A message as a plugin sees it: a string (WS text, TCP line) or bytes (WS binary, TCP length frame). */
export type MessageData = string | Uint8Array;

/** Which transport a connection came in on. */
export type TransportKind = 'ws' | 'tcp';

/** Why a connection closed. `code` follows WebSocket close codes; TCP uses 1000 (clean) or 1006 (abnormal). */
export interface CloseInfo {
  code: number;
  reason: string;
}

/**
 * A client connection as a plugin sees it: a handle (src/plugin/conn-handle.ts) with these members only. It holds no
 * socket, so a replaced version cannot keep one alive.
 */
export interface Conn<ConnState = unknown> {
  /**
   * `<prefix>-<counter>`: unique across processes and machines, and the same for the life of the connection, across
   * swaps, process upgrades and session resumes (src/connection/conn-id.ts).
   */
  readonly id: string;
  readonly transport: TransportKind;
  readonly remoteAddress: string;
  /** Per-connection plugin data, `undefined` until the plugin sets it; carried across swaps. */
  state: ConnState;
  /** Queue a message to the client. Returns false when the connection is closed. */
  send(data: MessageData): boolean;
  /**
   * Close the connection (WS close code and reason; TCP ends the stream). A code outside 1000–1003, 1007–1014 and
   * 3000–4999, or a reason over 123 bytes of UTF-8, throws HOTLINE_E_CLOSE_CODE and leaves the connection open.
   */
  close(code?: number, reason?: string): void;
}

/** The version's view of the host, passed to every plugin hook. */
export interface PluginContext<GlobalState = unknown, ConnState = unknown> {
  /** The global state returned by `init` or `migrate`. Assignable. */
  state: GlobalState;
  /** The plugin's own `version` string of this loaded version. */
  readonly version: string;
  /** Every open connection of this version (issue 12: with pinning or a canary, another live version's are not here). */
  readonly connections: Iterable<Conn<ConnState>>;
  /**
   * Send to every open connection of this version, or to those `filter` accepts. Returns how many were sent.
   * `{ allVersions: true }` also reaches the connections of other live versions (pinned, canary).
   */
  broadcast(data: MessageData, filter?: (conn: Conn<ConnState>) => boolean, options?: { allVersions?: boolean }): number;
  /** A pino child logger bound to this plugin version. */
  readonly log: Logger;
  /** Aborted when this version is disposed. */
  readonly signal: AbortSignal;
  /** Tracked timers: cleared automatically when this version is disposed. */
  setTimeout(fn: () => void, ms?: number): NodeJS.Timeout;
  setInterval(fn: () => void, ms?: number): NodeJS.Timeout;
  clearTimeout(timer: NodeJS.Timeout | undefined): void;
  clearInterval(timer: NodeJS.Timeout | undefined): void;
}

/** What `migrate` receives: the version it replaces and that version's global state. */
export interface PreviousVersion<PrevState = unknown> {
  version: string;
  state: PrevState;
  /**
   * Set when the state comes from a checkpoint, after a crash or a restart (host option `state`): the wall-clock ms
   * it was written. What changed after it is gone. Absent for a swap or a process upgrade.
   */
  restoredAt?: number;
}

type MaybePromise<T> = T | Promise<T>;

/** The shape a plugin's default export must have (DESIGN.md §2). */
export interface PluginDefinition<GlobalState = unknown, ConnState = unknown> {
  name: string;
  /** A semver string, shown in status and logs. */
  version: string;
  /** The host API major the plugin was written for. Must equal {@link HOST_API}. */
  api: number;
  /** Fresh start: return the global state. */
  init?(ctx: PluginContext<GlobalState, ConnState>): MaybePromise<GlobalState>;
  /** From another version (upgrade or downgrade): return this version's global state. */
  migrate?(prev: PreviousVersion, ctx: PluginContext<GlobalState, ConnState>): MaybePromise<GlobalState>;
  /** Per connection, after `migrate`: return this version's connection state. Must be synchronous. */
  migrateConnection?(prevConnState: unknown, prev: PreviousVersion): ConnState;
  /** Readiness self-test before the switch. Throw (or reject) to refuse the new version. */
  check?(ctx: PluginContext<GlobalState, ConnState>): MaybePromise<void>;
  onOpen?(conn: Conn<ConnState>, ctx: PluginContext<GlobalState, ConnState>): MaybePromise<void>;
  onMessage(conn: Conn<ConnState>, data: MessageData, ctx: PluginContext<GlobalState, ConnState>): MaybePromise<void>;
  onClose?(conn: Conn<ConnState>, info: CloseInfo, ctx: PluginContext<GlobalState, ConnState>): MaybePromise<void>;
  /** The old version's last call, after the switch. */
  dispose?(ctx: PluginContext<GlobalState, ConnState>): MaybePromise<void>;
}

/**
 * Declare a plugin. An identity function that gives the definition its types; the host validates the shape at load.
 *
 * @example
 * import { definePlugin } from 'hotline';
 *
 * export default definePlugin<{ count: number }, { seen: number }>({
 *   name: 'echo', version: '1.0.0', api: 1,
 *   init: () => ({ count: 0 }),
 *   migrate: (prev) => prev.state as { count: number },
 *   onOpen(conn) { conn.state = { seen: 0 }; },
 *   onMessage(conn, data, ctx) { ctx.state.count++; conn.state.seen++; conn.send(data); },
 * });
 */
export function definePlugin<GlobalState = unknown, ConnState = unknown>(
  definition: PluginDefinition<GlobalState, ConnState>,
): PluginDefinition<GlobalState, ConnState> {
  return definition;
}
