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
  /**
   * Join a room: from now on `ctx.to(room).send()` reaches this connection. Rooms belong to the host, not to the
   * version: a swap keeps them, a process upgrade carries them, and a connection leaves all of its rooms after its
   * `onClose` ran. Returns false when it was in the room already, or is closing. Throws HOTLINE_E_ROOM_NAME for a
   * name that is empty, over 255 bytes of UTF-8 or not a string, and HOTLINE_E_ROOM_LIMIT past 128 rooms.
   */
  join(room: string): boolean;
  /** Leave a room. Returns false when the connection was not in it. */
  leave(room: string): boolean;
}

/**
 * issue 13: who joined and left a room, by connection id, on any node: what `onPresence` receives. One member is one
 * connection id, wherever it is; an id is in `joined` when the room first lists it and in `left` when it no longer
 * does (it left, closed, or its node died and was expired).
 */
export interface PresenceChange {
  joined: string[];
  left: string[];
}

/** Options of a room delivery. */
export interface DeliveryOptions<ConnState = unknown> {
  /** Leave this connection out (usually the sender). By default every member gets the message, the sender included. */
  except?: Conn<ConnState>;
}

/** Where `ctx.to(room)` or `ctx.toConnection(id)` delivers. */
export interface Recipients<ConnState = unknown> {
  /**
   * Queue `data` to each recipient: encoded once, written to each one, each recipient's `maxSendBuffer` applying
   * on its own (a slow one is closed, the others are not held up). Returns how many it was queued to.
   */
  send(data: MessageData, options?: DeliveryOptions<ConnState>): number;
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
  /**
   * The members of a room, to send to: `ctx.to(room).send(data)` (every member, the sender included) or
   * `ctx.to(room).send(data, { except: conn })`. Costs O(members), whatever the number of connections.
   *
   * @example
   * onMessage(conn, data, ctx) { ctx.to('lobby').send(data, { except: conn }); }
   */
  to(room: string): Recipients<ConnState>;
  /**
   * One connection by its `conn.id`: `ctx.toConnection(id).send(data)` returns 1, or 0 when it is not open here. With
   * a cluster (`cluster` in createHost), a message for a connection not open here is sent to the other nodes, and the
   * node that has it delivers it (docs/cluster.md).
   */
  toConnection(id: string): Recipients<ConnState>;
  /** The rooms `conn` is in, in the order it joined them (a copy). */
  rooms(conn: Conn<ConnState>): string[];
  /**
   * The ids of a room's members. With a cluster (host option `cluster`), on every node, in the order this node
   * learnt of them, as its copy of the presence bucket has them (no round trip; docs/cluster.md, Presence).
   */
  members(room: string): Promise<string[]>;
  /** A pino child logger bound to this plugin version. */
  readonly log: Logger;
  /** Aborted when this version is disposed. */
  readonly signal: AbortSignal;
  /** Tracked timers: cleared automatically when this version is disposed. */
  setTimeout(fn: () => void, ms?: number): NodeJS.Timeout;
  setInterval(fn: () => void, ms?: number): NodeJS.Timeout;
  clearTimeout(timer: NodeJS.Timeout | undefined): void;
  clearInterval(timer: NodeJS.Timeout | undefined): void;
  /**
   * issue 15: open, or claim, the host-owned outbound link `name` (src/links/). A version that calls it with the same
   * name and options as the version before it gets the same live link: a swap keeps it open. A link that the new
   * version does not claim by the end of its init/migrate is closed once the old version is disposed. The same name
   * with other options throws HOTLINE_E_LINK_OPTIONS; worker mode throws HOTLINE_E_LINK_WORKER.
   */
  link<LinkState = unknown>(name: string, options: LinkOptions): Link<LinkState>;
}

/** issue 15: how a link reaches its upstream. */
export interface LinkOptions {
  /** `tcp://host:port`, `tls://host:port`, `ws://…` or `wss://…`. */
  url: string;
  /** TCP and TLS only: how the byte stream is cut into messages. Default 'lines'. */
  framing?: 'lines' | 'length';
  /** Largest message accepted from the upstream, in bytes (default 1 MiB); a bigger one closes and reconnects. */
  maxPayload?: number;
  /** Sends queued while disconnected: at most this many messages (default 1,000) … */
  maxQueuedSends?: number;
  /** … and bytes (default 1 MiB); past either, send() throws HOTLINE_E_LINK_QUEUE_FULL. */
  maxQueuedBytes?: number;
  /** Reconnect backoff (full jitter): the first cap and the largest, in ms. Defaults 100 and 5,000. */
  backoff?: { initialDelay?: number; maxDelay?: number };
  /** A connect attempt not open after this many ms is abandoned and retried (default 5,000). */
  connectTimeout?: number;
  /** tls:// and wss://: CA certificates (PEM) to trust besides the system's, and the name to check. */
  ca?: string | string[];
  servername?: string;
}

/** issue 15: where a link is in its life. */
export type LinkPhase = 'connecting' | 'open' | 'backoff' | 'closed';

/** issue 15: counters of a link, as a plugin and `hotline status` see them. */
export interface LinkStatus {
  name: string;
  url: string;
  phase: LinkPhase;
  /** Successful connects after the first. */
  reconnects: number;
  bytesIn: number;
  bytesOut: number;
  messagesIn: number;
  messagesOut: number;
  /** Sends waiting for the link to open. */
  queued: number;
  queuedBytes: number;
  /** Upstream frames refused by the framing (oversized or malformed): each closed and reconnected the link. */
  framingErrors: number;
  /** Process upgrades that handed this link's socket to the new process (no reconnect). */
  upgradesMoved: number;
  /** Process upgrades that could not (tls://, wss://): the new process reconnected it, counted in `reconnects` too. */
  upgradesReconnected: number;
}

/**
 * issue 15: an outbound long connection owned by the host, as a plugin sees it. Like `conn`, it holds no socket: the
 * host reconnects it, keeps it across swaps and hands it to a new process at an upgrade.
 */
export interface Link<LinkState = unknown> {
  readonly name: string;
  /** The link's phase now. */
  readonly phase: LinkPhase;
  /** Counters (see {@link LinkStatus}). */
  readonly status: LinkStatus;
  /** Per-link plugin data, `undefined` until set; carried across swaps (through `migrateLink` when defined). */
  state: LinkState;
  /**
   * Send a message upstream; while the link is not open it is queued (bounded) and sent after the next connect.
   * Throws HOTLINE_E_LINK_QUEUE_FULL past the bound, HOTLINE_E_LINK_CLOSED once the link is closed.
   */
  send(data: MessageData): void;
  /** Close the link for good (no reconnect). */
  close(): void;
}

/** issue 15: why a link's connection ended. `willReconnect` is false only when it was closed for good. */
export interface LinkCloseInfo {
  reason: string;
  code?: string;
  willReconnect: boolean;
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
  /** issue 15: a link's connection opened (the first time and after every reconnect), before its queued sends. */
  onLinkOpen?(link: Link, ctx: PluginContext<GlobalState, ConnState>): MaybePromise<void>;
  /**
   * issue 15: the hello/resubscribe hook, run on every reconnect (not the first connect), before queued sends are
   * flushed: what it sends goes out first.
   */
  onLinkReconnect?(link: Link, ctx: PluginContext<GlobalState, ConnState>): MaybePromise<void>;
  /** issue 15: a message from a link's upstream; dispatched in order, one at a time per link. */
  onLinkMessage?(link: Link, data: MessageData, ctx: PluginContext<GlobalState, ConnState>): MaybePromise<void>;
  /** issue 15: a link's connection ended (`info.willReconnect` tells whether the host reconnects it). */
  onLinkClose?(link: Link, info: LinkCloseInfo, ctx: PluginContext<GlobalState, ConnState>): MaybePromise<void>;
  /** issue 15: per link claimed in `migrate`/`init` by the new version: return the link's new state. Synchronous. */
  migrateLink?(prevLinkState: unknown, prev: PreviousVersion): unknown;
  /**
   * issue 13: a room's membership changed, on this node or (with a cluster) on another one. Delivered in order, one
   * event at a time, to the serving version (a swap parks them and the new version gets them). Inline isolation only.
   */
  onPresence?(room: string, change: PresenceChange, ctx: PluginContext<GlobalState, ConnState>): MaybePromise<void>;
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
