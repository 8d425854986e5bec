/**
 * Host options, their defaults, and their validation. Every default is documented in docs/api.md.
 */
import os from 'node:os';
import type { Logger } from 'pino';
import type { Bundle } from '../build/bundler.js';
import { HotlineError } from '../errors.js';
import { NatsSessionStore } from '../cluster/nats-session-store.js';
import type { NatsLinkOptions } from '../cluster/nats-connection.js';
import { type ClusterOptions as RoomBusOptions, type RoomBusSettings, resolveClusterSettings } from '../cluster/room-bus.js';
import type { PresenceOptions } from '../cluster/presence-options.js';
import { type PresenceSettings, resolvePresenceSettings } from '../cluster/presence.js';
import type { SessionStore } from '../session/store.js';
import { type SendAwayOptions, type ResolvedSessionOptions, type SessionOptions, resolveSendAwayOptions, resolveSessionOptions } from '../session/options.js';
import { DEFAULT_PROBATION, type ProbationOptions } from '../swap/probation.js';
import { type ResolvedStateOptions, type StateOptions, resolveStateOptions } from '../state/options.js';
import { checkTlsOptions } from '../transport/tls.js';
import type { ListenOptions } from '../transport/transport.js';
import type { PacerBounds } from '../transport/handshake-pacer.js';
import type { WatchOptions } from '../watch/watcher.js';
import type { HttpAdminConfig } from '../ops/http-admin.js';
import { type HttpAdminOptions, resolveHttpAdmin } from '../ops/http-admin-options.js';

export interface HostLimits {
  /** Largest message accepted, in bytes. WS closes with 1009; TCP closes the connection. Default 1 MiB. */
  maxPayload?: number;
  /** Open connections at most; more are refused (WS 503, TCP closed). Default 10 000. */
  maxConnections?: number;
  /** Bytes queued for one slow client before it is closed with 1008. Default 4 MiB. */
  maxSendBuffer?: number;
  /** A WebSocket upgrade must complete within this many ms on hotline's own server. Default 10 000. */
  handshakeTimeout?: number;
  /**
   * Received messages a connection may have waiting for its handler before hotline stops reading its socket (TCP
   * backpressure: nothing is lost). Reading resumes when the queue is down to half. Default 1 000.
   */
  maxQueuedMessages?: number;
  /** Payload bytes one connection may have waiting for its handler; over it, closed with 1008. Default 16 MiB. */
  maxQueuedBytes?: number;
  /**
   * A partial TCP frame or line, or an unfinished WebSocket frame or fragmented message, that gets no new bytes for
   * this many ms closes its connection (WS 1008, TCP destroyed). Default 30 000.
   */
  frameTimeout?: number;
  /** Bytes held in partial frames and messages across all connections; the one that would exceed it is closed. Default 64 MiB. */
  maxIncompleteBytes?: number;
  /** Ping every WebSocket client this often, in ms; 0 turns pings off. Default 30 000. */
  pingInterval?: number;
  /** A WebSocket client that does not pong within this many ms of a ping is cut off. Default 10 000. */
  pongTimeout?: number;
  // issue 9 item 6: per-IP admission (src/transport/admission.ts). 0 or absent: off, the default (see docs/reliability.md).
  /** Sockets one IP address may hold at once; more are refused (WS 503, TCP closed), HOTLINE_E_IP_LIMIT. Default off. */
  maxConnectionsPerIp?: number;
  /** Handshakes one IP address may start per second (a token bucket of that size); more: WS 429, TCP closed. Default off. */
  handshakeRatePerIp?: number;
  /**
   * Bytes one IP address may hold in partial frames and messages, all its connections together. A read that takes it
   * past this stops reading from that socket (nothing is lost: TCP pushes back on the client) until another of the
   * address' partial frames completes, times out or closes. Default off.
   */
  maxIncompleteBytesPerIp?: number;
}

/**
 * issue 13: a cluster on NATS (docs/cluster.md). Room messages reach every node's members (the cluster bus, its
 * options in {@link RoomBusOptions}), and presence: every node publishes its rooms' members to a JetStream KV bucket and
 * watches the others', so `ctx.members(room)` and `onPresence` cover every node.
 */
export interface ClusterOptions extends RoomBusOptions {
  /**
   * This node's name: the origin of its room messages and the key of its presence. Keep it across restarts (e.g. the
   * machine's name): a restarted node's new epoch then replaces its old entries at once. Default `<hostname>-<pid>`,
   * whose old entries are expired instead.
   */
  node?: string;
  /** Presence across nodes: its bucket, heartbeat, expiry and bounds; `false` turns it off. Default on. */
  presence?: PresenceOptions | false;
}

export interface HostOptions {
  /** Path of the plugin entry (.ts or .js). Its local imports are bundled with it. */
  plugin: string;
  /** Listeners. Default: one WebSocket listener on 127.0.0.1, port 0. */
  listen?: ListenOptions[];
  /** Reload when a file of the plugin's import graph changes. Default false. */
  watch?: boolean | WatchOptions;
  /** How long in-flight handlers may take to settle when a swap suspends dispatch, in ms. Default 5 000. */
  settleTimeout?: number;
  /** @deprecated Since 0.2: the old name of `settleTimeout`, accepted for one release. */
  drainTimeout?: number;
  /** How long init, check, migrate and dispose may take, in ms. Default 5 000. */
  hookTimeout?: number;
  /** How long close() waits for clients to leave before cutting them off, in ms. Default 5 000. */
  shutdownTimeout?: number;
  /**
   * An async handler (onOpen, onMessage, onClose) whose promise has not settled after this many ms is abandoned: its
   * connection goes on with its next event, swaps stop waiting for it, and it is counted against its version
   * (HOTLINE_E_HANDLER_HUNG). Detected within 1.25 × this. Default 2 000.
   */
  hangTimeout?: number;
  /**
   * Under `hotline start`: a worker whose event loop sends no heartbeat for this many ms is killed and restarted by
   * the supervisor (HOTLINE_E_WORKER_HUNG). 0 turns the watchdog off. An in-process host only validates it. Default 10 000.
   */
  watchdogTimeout?: number;
  /** Automatic rollback of a new version with a high error rate. Default on: see ProbationOptions. */
  probation?: (Partial<ProbationOptions> & DeprecatedProbationOptions) | false;
  limits?: HostLimits;
  /** Serve the admin socket (reload, rollback, status) on this path. Default: none for the library. */
  admin?: string;
  /**
   * issue 14: the HTTP admin listener: `/metrics`, `/healthz`, `/readyz`, the dashboard, and the JSON API behind
   * `token`. `true`: 127.0.0.1:9464; a string: `HOST:PORT`. Beyond loopback a token is required
   * (HOTLINE_E_HTTP_ADMIN_EXPOSED). Default: none. See docs/operations.md.
   */
  httpAdmin?: HttpAdminOptions | string | true;
  /** issue 14: keep Prometheus metrics (`host.metrics()`) without an HTTP listener. On whenever httpAdmin is. Default false. */
  metrics?: boolean;
  /** A pino logger. Default: pino at level `info` on stderr. */
  logger?: Logger;
  /**
   * Resumable sessions for WebSocket clients that speak `hotline.v1` (the `hotline/client` library); plain clients are
   * served as before. `true` keeps sessions in memory; pass a `store` (e.g. FileSessionStore) to survive a restart.
   * Default off. See docs/client.md.
   */
  sessions?: boolean | SessionOptions;
  /**
   * issue 13: a cluster on NATS. Rooms span nodes: `ctx.to(room).send()` reaches the members on every node of the
   * same `name`, FIFO per origin node, and their members are known on every node (presence, `onPresence`). NATS unreachable: local delivery goes on; cross-node messages are buffered
   * (bounded) or dropped, by `whileDown`, and counted. Sessions across nodes are `sessions: { store: 'nats' }`
   * (`hotline start --cluster` turns both on). Default off. See docs/cluster.md.
   */
  cluster?: ClusterOptions;
  /**
   * Durable global state (issue 11): checkpoint the plugin's global state in this folder at every swap, every
   * `interval` ms when it changed (default 5 000) and at shutdown; a host started on the folder again (after a crash,
   * a kill -9, a watchdog restart) starts from the last checkpoint through the plugin's `migrate`. A folder path, or
   * { dir, interval, maxBytes }. Default off. See docs/reliability.md, "Checkpoints".
   */
  state?: string | StateOptions | false;
  /** How close() sends clients away: batches of `batchSize` every `interval` ms. Default 1 000 every 250 ms. */
  sendAway?: SendAwayOptions;
  /** @deprecated Since 0.2: the old name of `sendAway`, accepted for one release. */
  drain?: SendAwayOptions;
  /**
   * issue 11: where plugin versions run. `inline` (default, fastest): in the host's thread, contained by guards and
   * the supervisor's watchdog. `worker`: each version in its own worker thread with `workerLimits`; a version that
   * hangs past hangTimeout, crashes or runs out of memory is terminated and the last known good version is restored
   * with its last state checkpoint, every connection staying open. See docs/guide.md, "Inline or worker isolation".
   */
  isolation?: 'inline' | 'worker';
  /** Worker mode: the `resourceLimits` of each version's worker thread. Default 512 MB of old generation. */
  workerLimits?: WorkerLimits;
  /** @internal Load the plugin but open no listener until the upgrade supervisor says so (src/handoff). */
  deferListen?: boolean;
  /**
   * @internal Serve this build first instead of building the entry from disk (issue 11: a supervised worker restarted
   * on the last known good build). Later reloads build from disk as usual.
   */
  initialBuild?: Bundle;
  /**
   * @internal This process replaces a worker that died (issue 11): a session it restores marks the message its client
   * replays first, so that a message killing this worker too is dropped at the next restore (poison messages).
   */
  afterWorkerDeath?: boolean;
  /**
   * @internal The handshake pacer's bounds (src/transport/handshake-pacer.ts): handshake steps per turn of the loop,
   * steps waiting at most, and the bytes they may hold. For tests of the backlog; the defaults are what a host runs with.
   */
  handshakePacing?: PacerBounds;
}

/** issue 11: Node's `resourceLimits` of a worker-mode version's thread, in MB. */
export interface WorkerLimits {
  /** The heap (old generation) a version may use before its worker is terminated (HOTLINE_E_VERSION_OOM). Default 512. */
  maxOldGenerationSizeMb?: number;
  maxYoungGenerationSizeMb?: number;
  stackSizeMb?: number;
}

/** Option names renamed in 0.2, accepted for one release (docs/api.md#deprecated-names). */
export interface DeprecatedProbationOptions {
  /** @deprecated Since 0.2: use `window` (every duration option is in ms, without a unit suffix). */
  windowMs?: number;
}

export interface ResolvedOptions {
  plugin: string;
  listen: ListenOptions[];
  watch: WatchOptions | false;
  settleTimeout: number;
  hookTimeout: number;
  shutdownTimeout: number;
  hangTimeout: number;
  watchdogTimeout: number;
  probation: ProbationOptions | false;
  limits: Required<HostLimits>;
  admin: string | undefined;
  httpAdmin: HttpAdminConfig | undefined;
  metrics: boolean;
  sessions: ResolvedSessionOptions | false;
  /** The NATS connection's options; the bus opens its own with noEcho, presence its own without. */
  cluster: { link: NatsLinkOptions; bus: RoomBusSettings; presence: PresenceSettings | false } | false;
  state: ResolvedStateOptions | false;
  sendAway: Required<SendAwayOptions>;
  isolation: 'inline' | 'worker';
  workerLimits: WorkerLimits & { maxOldGenerationSizeMb: number };
}

/** issue 11: default heap of a worker-mode version (src/runtime/worker-version.ts). */
export const DEFAULT_WORKER_HEAP_MB = 512;

/** issue 11: the abandoned async handler and the supervisor's watchdog (docs/reliability.md, "Hangs and crashes"). */
export const DEFAULT_HANG_TIMEOUT = 2_000;
export const DEFAULT_WATCHDOG_TIMEOUT = 10_000;

export const DEFAULT_LIMITS: Required<HostLimits> = {
  maxPayload: 1024 * 1024,
  maxConnections: 10_000,
  maxSendBuffer: 4 * 1024 * 1024,
  handshakeTimeout: 10_000,
  maxQueuedMessages: 1_000,
  maxQueuedBytes: 16 * 1024 * 1024,
  frameTimeout: 30_000,
  maxIncompleteBytes: 64 * 1024 * 1024,
  pingInterval: 30_000,
  pongTimeout: 10_000,
  maxConnectionsPerIp: Infinity,
  handshakeRatePerIp: Infinity,
  maxIncompleteBytesPerIp: Infinity,
};

/** A limit where 0 (or absent) means off: resolved to Infinity. */
function optional(name: string, value: number | undefined): number {
  if (value === undefined || value === 0) return Infinity;
  return positive(name, value, Infinity);
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new HotlineError('HOTLINE_E_CONFIG', `${name} must be a positive number, got ${String(value)}`);
  }
  return value;
}

/** Like positive(), but 0 is allowed: it turns the feature off. */
function positiveOrOff(name: string, value: number | undefined, fallback: number): number {
  if (value === 0) return 0;
  return positive(name, value, fallback);
}

export function resolveOptions(o: HostOptions): ResolvedOptions {
  if (!o || typeof o.plugin !== 'string' || o.plugin.length === 0) {
    throw new HotlineError('HOTLINE_E_CONFIG', 'createHost() needs { plugin: "path/to/plugin.ts" }');
  }
  const listen = o.listen ?? [{ transport: 'ws' as const }];
  for (const l of listen) {
    if (l.transport !== 'ws' && l.transport !== 'tcp') {
      throw new HotlineError('HOTLINE_E_CONFIG', `listen[].transport must be "ws" or "tcp", got ${String((l as { transport: unknown }).transport)}`);
    }
    if (l.transport === 'tcp' && l.framing !== undefined && l.framing !== 'lines' && l.framing !== 'length') {
      throw new HotlineError('HOTLINE_E_CONFIG', `listen[].framing must be "lines" or "length", got ${String(l.framing)}`);
    }
    if (l.port !== undefined && (!Number.isInteger(l.port) || l.port < 0 || l.port > 65535)) {
      throw new HotlineError('HOTLINE_E_CONFIG', `listen[].port must be an integer from 0 to 65535, got ${String(l.port)}`);
    }
    if (l.tls !== undefined) {
      checkTlsOptions(l.tls, 'listen[].tls');
      if (l.transport === 'ws' && l.server) {
        throw new HotlineError('HOTLINE_E_CONFIG', 'listen[].tls cannot be combined with server: attach to an https.Server instead');
      }
    }
  }
  const lim = o.limits ?? {};
  const maxPayload = positive('limits.maxPayload', lim.maxPayload, DEFAULT_LIMITS.maxPayload);
  return {
    plugin: o.plugin,
    listen,
    watch: o.watch === true ? {} : o.watch || false,
    settleTimeout: positive('settleTimeout', o.settleTimeout ?? o.drainTimeout, 5_000),
    hookTimeout: positive('hookTimeout', o.hookTimeout, 5_000),
    shutdownTimeout: positive('shutdownTimeout', o.shutdownTimeout, 5_000),
    hangTimeout: positive('hangTimeout', o.hangTimeout, DEFAULT_HANG_TIMEOUT),
    watchdogTimeout: positiveOrOff('watchdogTimeout', o.watchdogTimeout, DEFAULT_WATCHDOG_TIMEOUT),
    probation: o.probation === false ? false : resolveProbation(o.probation),
    limits: {
      maxPayload: positive('limits.maxPayload', lim.maxPayload, DEFAULT_LIMITS.maxPayload),
      maxConnections: positive('limits.maxConnections', lim.maxConnections, DEFAULT_LIMITS.maxConnections),
      maxSendBuffer: positive('limits.maxSendBuffer', lim.maxSendBuffer, DEFAULT_LIMITS.maxSendBuffer),
      handshakeTimeout: positive('limits.handshakeTimeout', lim.handshakeTimeout, DEFAULT_LIMITS.handshakeTimeout),
      maxQueuedMessages: positive('limits.maxQueuedMessages', lim.maxQueuedMessages, DEFAULT_LIMITS.maxQueuedMessages),
      maxQueuedBytes: positive('limits.maxQueuedBytes', lim.maxQueuedBytes, DEFAULT_LIMITS.maxQueuedBytes),
      frameTimeout: positive('limits.frameTimeout', lim.frameTimeout, DEFAULT_LIMITS.frameTimeout),
      maxIncompleteBytes: positive('limits.maxIncompleteBytes', lim.maxIncompleteBytes, DEFAULT_LIMITS.maxIncompleteBytes),
      pingInterval: positiveOrOff('limits.pingInterval', lim.pingInterval, DEFAULT_LIMITS.pingInterval),
      pongTimeout: positive('limits.pongTimeout', lim.pongTimeout, DEFAULT_LIMITS.pongTimeout),
      maxConnectionsPerIp: optional('limits.maxConnectionsPerIp', lim.maxConnectionsPerIp),
      handshakeRatePerIp: optional('limits.handshakeRatePerIp', lim.handshakeRatePerIp),
      maxIncompleteBytesPerIp: optional('limits.maxIncompleteBytesPerIp', lim.maxIncompleteBytesPerIp),
    },
    admin: o.admin,
    httpAdmin: resolveHttpAdmin(o.httpAdmin),
    metrics: o.metrics === true || o.httpAdmin !== undefined,
    sessions: resolveSessionOptions(o.sessions, natsSessionStore),
    cluster: resolveCluster(o.cluster, maxPayload),
    state: resolveStateOptions(o.state),
    sendAway: resolveSendAwayOptions(o.sendAway ?? o.drain),
    isolation: resolveIsolation(o.isolation),
    workerLimits: resolveWorkerLimits(o.workerLimits),
  };
}

function resolveProbation(o: (Partial<ProbationOptions> & DeprecatedProbationOptions) | undefined): ProbationOptions {
  const { windowMs, ...rest } = o ?? {};
  return { ...DEFAULT_PROBATION, ...(windowMs !== undefined && { window: windowMs }), ...rest };
}

function resolveIsolation(v: unknown): 'inline' | 'worker' {
  if (v === undefined) return 'inline';
  if (v !== 'inline' && v !== 'worker') throw new HotlineError('HOTLINE_E_CONFIG', `isolation must be "inline" or "worker", got ${String(v)}`);
  return v;
}

function resolveWorkerLimits(w: WorkerLimits | undefined): ResolvedOptions['workerLimits'] {
  const out: ResolvedOptions['workerLimits'] = { maxOldGenerationSizeMb: positive('workerLimits.maxOldGenerationSizeMb', w?.maxOldGenerationSizeMb, DEFAULT_WORKER_HEAP_MB) };
  if (w?.maxYoungGenerationSizeMb !== undefined) out.maxYoungGenerationSizeMb = positive('workerLimits.maxYoungGenerationSizeMb', w.maxYoungGenerationSizeMb, 0);
  if (w?.stackSizeMb !== undefined) out.stackSizeMb = positive('workerLimits.stackSizeMb', w.stackSizeMb, 0);
  return out;
}

function resolveCluster(c: ClusterOptions | undefined, maxPayload: number): ResolvedOptions['cluster'] {
  if (c === undefined) return false;
  if (typeof c !== 'object' || c === null || c.servers === undefined) throw new HotlineError('HOTLINE_E_CONFIG', "cluster needs servers, e.g. { servers: 'nats://127.0.0.1:4222' }");
  // One node name for the bus (its messages' origin) and presence (its record), checked by both.
  const named = { ...c, node: c.node ?? `${os.hostname()}-${process.pid}` };
  const bus = resolveClusterSettings(named, maxPayload);
  const presence = resolvePresenceSettings(named);
  return {
    link: { servers: c.servers, name: `hotline ${bus.node}`, atStart: c.atStart, waitTimeout: c.waitTimeout, connectTimeout: c.connectTimeout },
    bus,
    presence,
  };
}

/** `sessions: { store: 'nats', servers, … }`: records age out of the bucket at 3 × the session TTL (its max_age). */
function natsSessionStore(s: SessionOptions, ttl: number): SessionStore {
  if (!s.servers) throw new HotlineError('HOTLINE_E_CONFIG', "sessions.store 'nats' needs sessions.servers, e.g. 'nats://127.0.0.1:4222'");
  return new NatsSessionStore({ servers: s.servers, bucket: s.bucket, node: s.node, atStart: s.atStart, waitTimeout: s.waitTimeout, maxAge: 3 * ttl });
}
