/**
 * The host: listeners, connections, the current plugin version and the swap queue, wired together. This file only
 * composes; each concept lives in its own folder (transport, connection, swap, watch, admin).
 */
import { EventEmitter } from 'node:events';
import path from 'node:path';
import pino, { type Logger } from 'pino';
import { AdminServer } from '../admin/admin-server.js';
import { type LastResortCounts, lastResortCounts } from './last-resort.js';
import type { AdminCommand, AdminOptions } from '../admin/protocol.js';
import { type Bundler, createBundler } from '../build/bundler.js';
import { withFirstBuild } from '../build/first-build.js';
import { Connection } from '../connection/connection.js';
import { defaultLinkDeps, linksOf } from '../links/link-table.js';
import { type DispatchTarget, Dispatcher } from '../connection/dispatcher.js';
import type { Link } from '../connection/link.js';
import { HotlineError, isHotlineError } from '../errors.js';
import { checkInternals } from '../internals/self-check.js';
import { sweepLiveVersions } from '../load/pollution-sweep.js';
import type { LinkStatus } from '../plugin/contract.js';
import * as pluginApi from '../plugin/public-api.js';
import type { SwapPhase, SwapRecord, SwapTrigger } from '../swap/history.js';
import { Swapper } from '../swap/swapper.js';
import { parsePolicy, type ReloadPolicy } from '../swap/reload-policy.js';
import type { VersionRuntime } from '../runtime/version-runtime.js';
import type { Isolation, VersionStats } from '../runtime/version-stats.js';
import { IncompleteFrames } from '../transport/incomplete-frames.js';
import { TcpTransport } from '../transport/tcp-transport.js';
import type { ListenAddress, Transport, TransportHost } from '../transport/transport.js';
import { WsTransport } from '../transport/ws-transport.js';
import { createAdmit } from '../transport/admission.js';
import { HandshakePacer } from '../transport/handshake-pacer.js';
import { PluginWatcher } from '../watch/watcher.js';
import { type SendAwayBatch, sendAwayInBatches } from './send-away.js';
import { SessionManager } from '../session/session-manager.js';
import type { SessionStoreStatus } from '../session/store.js';
import { type LockState, OperationLock } from '../lock/operation-lock.js';
import { type CheckpointStatus, Checkpointer } from '../state/checkpointer.js';
import { type HostOptions, type ResolvedOptions, resolveOptions } from './options.js';
import { EventStream } from '../ops/event-stream.js';
import { HostMetrics, dependenciesOf } from '../ops/host-metrics.js';
import { wireHostMetrics } from '../ops/host-wiring.js';
import { HttpAdmin, type Readiness } from '../ops/http-admin.js';
import type { HttpAdminAddress } from '../ops/http-address.js';
import { NatsLink } from '../cluster/nats-connection.js';
import { RoomBus, type RoomBusStatus } from '../cluster/room-bus.js';
import { HostPresence } from '../cluster/presence.js';
import type { PresenceStatus } from '../cluster/nats-presence.js';

/** The host's lifecycle. */
export type HostState = 'starting' | 'running' | 'closing' | 'closed';

/** Typed events of a host. */
export interface HostEvents {
  /** A swap switched to a new version. */
  swap: [record: SwapRecord, version: VersionStats];
  /** A swap was aborted; the old version keeps serving. */
  'swap-error': [error: HotlineError, record: SwapRecord];
  /** A swap entered a phase. */
  phase: [phase: SwapPhase, trigger: SwapTrigger];
  /** A plugin handler threw or rejected (HOTLINE_E_HANDLER). */
  'handler-error': [error: HotlineError, version: VersionStats, connectionId: string | undefined];
  /** A connection-level limit was hit (payload, slow consumer, max connections, handshake). */
  'connection-error': [error: HotlineError, connectionId: string | undefined];
  /** A version failed probation and is being rolled back (HOTLINE_E_PROBATION). */
  'probation-failed': [error: HotlineError, version: VersionStats];
  /**
   * issue 11, worker mode: a version hung (HOTLINE_E_HANDLER_HUNG), crashed (HOTLINE_E_VERSION_CRASHED) or ran out of
   * memory (HOTLINE_E_VERSION_OOM); its worker was terminated and a restore follows (a `swap` event, trigger `restore`).
   */
  'version-failed': [error: HotlineError, version: VersionStats];
  /** close() sent a batch of clients away (1012, plus a reconnect hint for session clients). */
  sendAway: [batch: SendAwayBatch];
  /** @deprecated Since 0.2: the old name of `sendAway`, emitted beside it for one release. */
  drain: [batch: SendAwayBatch];
  /** issue 14: a reload found the build identical to the running version (outcome `unchanged`). */
  'swap-unchanged': [record: SwapRecord];
  /** issue 14: a session client resumed its session. */
  'session-resumed': [];
  /** issue 14: a session client could not resume and got a new session (the code says why). */
  'session-lost': [code: string];
}

/** @internal What a process upgrade needs of a host (see Host#handoffPort). */
export interface HostHandoffPort {
  dispatcher: Dispatcher;
  transports: readonly Transport[];
  current(): VersionRuntime | undefined;
  /** issue 12: labels of every live version (pinned, default, canary); an upgrade refuses more than one. */
  liveVersions?(): string[];
  swapPhase(): SwapPhase;
  /** Start the listeners of a host created with `deferListen`. */
  startListening(): Promise<void>;
  /** The host's one operation lock: the export and the adoption hold it (operation-lock.ts). */
  lock: OperationLock;
  /** The host's hookTimeout, which bounds the adoption's `migrate` as it bounds a swap's. */
  hookTimeout: number;
  /**
   * From here on, a session client closed keeps its session in the store and gets a reconnect hint (an upgrade's
   * send-away), and no checkpoint of the global state is written: it belongs to the new worker now.
   */
  beginSendAway(): void;
}

/** Options of {@link Host.reload}. */
export interface ReloadOptions {
  /** Keep the running version if the new build is identical to it (same bundle hash). Default false. */
  ifChanged?: boolean;
  /**
   * issue 12: how the new version takes traffic: `'migrate'` (default: every connection moves, with its state),
   * `'pin'` / `{ pin: true, maxAge }` (open connections finish on the old version), or `{ canary: 0.1, … }`.
   * Both isolations (in worker mode each live version is its own thread).
   */
  policy?: ReloadPolicy;
}

/** issue 12: one live version in `status().live`. */
export interface LiveVersionStatus {
  seq: number;
  label: string;
  hash: string;
  /** `default`: new connections get it (during a canary, the stable version); `canary`; `pinned`. */
  role: 'default' | 'canary' | 'pinned';
  connections: number;
  messages: number;
  errors: number;
  /** errors / messages over the version's life. */
  errorRate: number;
  /** Handler latency p99 in ms over recent sampled messages; absent before any sample. */
  p99Ms?: number;
  /** pinned: ms since it was pinned and its max age; canary: ms since it started, its share and window. */
  ageMs?: number;
  maxAgeMs?: number;
  canary?: { share: number; windowMs: number; errorRate: number; stableErrorRate: number };
}

/** A snapshot for `hotline status`. */
export interface HostStatus {
  pid: number;
  state: HostState;
  phase: SwapPhase;
  uptimeMs: number;
  plugin: { name: string; version: string; hash: string; entry: string; seq: number } | undefined;
  /** issue 11: where plugin versions run. */
  isolation: Isolation;
  listen: ListenAddress[];
  connections: number;
  /** `dropped`: received but never handled, because the connection closed (or overflowed) first. */
  messages: { in: number; out: number; dropped: number };
  /** issue 11: async handlers abandoned at hangTimeout since start (HOTLINE_E_HANDLER_HUNG, counted per version too). */
  handlersAbandoned: number;
  versions: VersionStats[];
  /** issue 12: every live version, the default among them. */
  live: LiveVersionStatus[];
  swaps: SwapRecord[];
  /** Sessions alive in this process, when sessions are on. */
  sessions?: number;
  /** Exceptions and rejections that escaped to the last-resort handler of this process (last-resort.ts). */
  escaped: LastResortCounts;
  /** When sessions are on: those waiting for their client, and those evicted since start (sessions.maxDetached). */
  sessionsDetached?: number;
  sessionsEvicted?: number;
  /** When sessions are on: replayed messages dropped as poison since start (HOTLINE_E_POISON_MESSAGE, issue 11). */
  sessionsPoisoned?: number;
  /** A store that reports on itself (the NATS store, issue 13: its link `up` or `degraded`, deferred writes, conflicts). */
  sessionStore?: SessionStoreStatus;
  /** Which operation (swap, export, adopt, shutdown) holds the host's operation lock, and how many were refused. */
  lock: LockState;
  /** With the `state` option: the checkpoints of the global state (writes, failures, what the start restored). */
  checkpoint?: CheckpointStatus;
  /** issue 15: the outbound links the plugin holds (src/links/), when it holds any. */
  links?: LinkStatus[];
  /** issue 13: rooms with members on this node (`count`), the largest 100 of them with their member counts. */
  rooms: { count: number; largest: Array<{ room: string; members: number }> };
  /**
   * issue 9: partial frames and messages held now (`bytes` across `holders` connections), the sockets held back for
   * their address' limits.maxIncompleteBytesPerIp now (`heldBack`) and since start (`heldBackTotal`).
   */
  partialFrames: { bytes: number; holders: number; heldBack: number; heldBackTotal: number };
  /**
   * Handshake steps (upgrades, session hellos) waiting for their turn now (src/transport/handshake-pacer.ts), and
   * those refused since start because too many waited (HOTLINE_E_HANDSHAKE_BACKLOG).
   */
  handshakes: { queued: number; refused: number };
  /** issue 13: with `cluster`: the cluster bus (NATS state, published, buffered, dropped, gaps, refused). */
  cluster?: RoomBusStatus;
  /** issue 13: with `cluster`: presence across nodes (its NATS state, the peers, the rooms with local and global counts). */
  presence?: PresenceStatus & { events: { delivered: number; dropped: number; abandoned: number } };
}

// Until the first version loads there is nothing to dispatch to; listeners open only after it does.
const NO_TARGET: DispatchTarget = {
  open: () => undefined,
  message: () => undefined,
  close: () => undefined,
  handlerError: () => undefined,
};

/**
 * A running hotline server. Create one with {@link createHost}.
 */
export class Host extends EventEmitter<HostEvents> {
  readonly log: Logger;
  #options: ResolvedOptions;
  #state: HostState = 'starting';
  #startedAt = Date.now();
  #bundler: Bundler;
  #dispatcher: Dispatcher;
  /** Partial frames of every connection, under one budget (issue 9). */
  #incomplete: IncompleteFrames;
  /** One for the host: every listener's upgrades and the sessions' hellos share its turns. */
  #pacer: HandshakePacer;
  #swapper: Swapper;
  #transports: Transport[] = [];
  #watcher: PluginWatcher | undefined;
  #admin: AdminServer | undefined;
  #closing: Promise<void> | undefined;
  #finishedWaiters = new Set<() => void>();
  #sessions: SessionManager | undefined;
  /** Checkpoints of the global state, with the `state` option (src/state/). */
  #checkpoints: Checkpointer | undefined;
  #deferListen: boolean;
  /** One operation at a time: swap, upgrade export or adoption, shutdown (operation-lock.ts). */
  #lock = new OperationLock();
  /**
   * True after a swap failed: the failed build's inputs are unknown (esbuild gives no metafile on failure), so a fix
   * to a file the serving version never imported (a new, broken helper) must still trigger a reload.
   */
  #lastSwapFailed = false;
  /** issue 14: Prometheus metrics, the HTTP admin listener and its event stream, when asked for (src/ops). */
  #metrics: HostMetrics | undefined;
  #http: HttpAdmin | undefined;
  #events: EventStream | undefined;
  /** issue 13: room messages across nodes, with the `cluster` option (src/cluster/room-bus.ts). */
  #bus: RoomBus | undefined;
  /** issue 13: joins and leaves as onPresence events; with `cluster`, every node's members (src/cluster/presence.ts). */
  #presence: HostPresence;
  /** issue 13: the node's NATS connection, with `cluster`. */
  #natsLink: NatsLink | undefined;

  /** @internal Use createHost(). */
  constructor(options: HostOptions) {
    super();
    this.#options = resolveOptions(options);
    this.#deferListen = options.deferListen === true;
    this.log = options.logger ?? pino({ level: 'info' }, pino.destination(2));
    if (this.#options.state) {
      const lock = this.#lock;
      // A worker started for a process upgrade neither restores nor writes until its commit (checkpointer.ts).
      this.#checkpoints = new Checkpointer(this.#options.state, {
        current: () => {
          const v = this.#swapper.current;
          return v && { plugin: v.name, version: v.version, hash: v.bundle.hash, state: v.state };
        },
        moving: () => {
          const l = lock.state;
          return l.phase === 'held' && (l.holder === 'export' || l.holder === 'adopt');
        },
      }, this.log, this.#deferListen);
    }
    this.#bundler = withFirstBuild(createBundler(this.#options.plugin), options.initialBuild);
    const { maxSendBuffer, maxQueuedMessages, maxQueuedBytes, frameTimeout, maxIncompleteBytes, maxIncompleteBytesPerIp } = this.#options.limits;
    this.#incomplete = new IncompleteFrames({ frameTimeout, maxIncompleteBytes, maxIncompleteBytesPerIp });
    this.#pacer = new HandshakePacer(options.handshakePacing);
    const hangTimeout = this.#options.hangTimeout;
    this.#dispatcher = new Dispatcher(NO_TARGET, { maxSendBuffer, maxQueuedMessages, maxQueuedBytes, hangTimeout }, {
      connectionError: (conn, err) => this.#connectionError(err, conn),
      connectionFinished: () => {
        for (const w of this.#finishedWaiters) w();
      },
      targetEmptied: (t) => this.#swapper.targetEmptied(t),
    });
    this.#presence = new HostPresence(this.#options.cluster && this.#options.cluster.presence, {
      rooms: this.#dispatcher.rooms,
      gate: this.#dispatcher,
      connections: () => this.#dispatcher.connections.size,
      log: (level, msg, fields) => this.log[level](fields ?? {}, msg),
    });
    // issue 15: the links' table, created here so their log lines go to the host's logger.
    const links = linksOf(this.#dispatcher, { ...defaultLinkDeps, log: (level, msg, fields) => this.log[level](fields ?? {}, msg) });
    // A worker started for an upgrade: the links its plugin claims wait for the old worker's (src/handoff/link-adopt.ts).
    if (this.#deferListen) links.defer();
    if (this.#options.sessions) {
      this.#sessions = new SessionManager({
        dispatcher: this.#dispatcher,
        options: this.#options.sessions,
        helloTimeout: this.#options.limits.handshakeTimeout,
        reportError: (err, conn) => this.#connectionError(err, conn),
        markReplays: options.afterWorkerDeath === true,
        sessionResumed: () => this.emit('session-resumed'),
        sessionLost: (code) => this.emit('session-lost', code),
        pace: (run) => this.#pacer.pace(run),
      });
    }
    this.#swapper = new Swapper(
      this.#bundler,
      this.#dispatcher,
      this.log,
      {
        settleTimeout: this.#options.settleTimeout,
        hookTimeout: this.#options.hookTimeout,
        probation: this.#options.probation,
        builtins: { hotline: pluginApi },
        lock: this.#lock,
        ...(this.#checkpoints && { restore: { take: (plugin: string) => this.#checkpoints!.restore(plugin), done: (err?: unknown) => this.#checkpoints!.restored(err) } }),
        isolation: this.#options.isolation,
        worker: { hangTimeout, resourceLimits: this.#options.workerLimits },
      },
      {
        phase: (phase, trigger) => {
          // issue 11: a pollution left by the running version would break the build (esbuild parses JSON): repair first.
          if (phase === 'building') sweepLiveVersions();
          this.emit('phase', phase, trigger);
        },
        swapped: (record, version) => {
          this.log.info({ swap: record }, `swapped to ${version.name}@${version.version} (${record.trigger}, ${record.totalMs} ms)`);
          this.#lastSwapFailed = false;
          this.#watcher?.track(this.#swapper.current?.bundle.inputs ?? []);
          this.#checkpoints?.save('swap');
          this.emit('swap', record, version);
        },
        unchanged: (record) => {
          this.log.info({ swap: record }, `reload (${record.trigger}): unchanged, still serving ${record.to} (hash ${record.hash})`);
          this.emit('swap-unchanged', record);
        },
        swapFailed: (record, err) => {
          this.#lastSwapFailed = true;
          // The first load's failure rejects createHost() with this error, and its caller reports it (the CLI prints
          // it): logged here as well, a user saw the build error twice.
          if (record.trigger !== 'start') this.log.error({ swap: record, code: err.code, err }, `swap aborted, ${record.from ?? 'nothing'} keeps serving: ${err.code}: ${err.message}`);
          this.emit('swap-error', err, record);
        },
        handlerError: (version, err, conn) => {
          this.log.error({ code: err.code, err: err.cause ?? err, conn: conn?.id, seq: version.seq, version: version.version }, err.message);
          this.emit('handler-error', err, version, conn?.id);
        },
        probationFailed: (version, err) => {
          this.log.error({ code: err.code, seq: version.seq, version: version.version }, err.message);
          this.emit('probation-failed', err, version);
        },
        versionFailed: (version, err) => {
          this.log.error({ code: err.code, seq: version.seq }, err.message);
          this.emit('version-failed', err, version);
        },
      },
    );
    if (this.#options.metrics) this.#startMetrics();
  }

  /** issue 14: metrics fed by this host's counters and events, and the event stream of the HTTP admin. */
  #startMetrics(): void {
    const m = new HostMetrics({
      dispatcher: this.#dispatcher,
      versionOf: (target) => (target as Partial<VersionRuntime>).version ?? 'unknown',
      currentVersion: () => this.#swapper.current?.version,
      sessions: () => this.#sessions && { live: this.#sessions.size, detached: this.#sessions.detachedCount, evicted: this.#sessions.evicted },
      sessionStore: () => this.#sessionStoreStatus(),
      cluster: () => this.#bus?.status(),
    });
    this.#metrics = m;
    if (this.#options.httpAdmin) this.#events = new EventStream();
    wireHostMetrics(this, m, this.#events);
  }

  /** issue 14: the Prometheus exposition text. Rejects HOTLINE_E_CONFIG unless created with `metrics` or `httpAdmin`. */
  metrics(): Promise<string> {
    if (!this.#metrics) return Promise.reject(new HotlineError('HOTLINE_E_CONFIG', 'this host was created without metrics (createHost({ metrics: true }))'));
    return this.#metrics.text();
  }

  /** @internal The metric families as data, for the supervisor (src/handoff): empty without metrics. */
  metricFamilies(): Promise<unknown[]> {
    return this.#metrics ? this.#metrics.families() : Promise.resolve([]);
  }

  /** Where the HTTP admin listens (the real port when 0 was asked for), if it does. */
  get httpAdminAddress(): HttpAdminAddress | undefined {
    return this.#http?.address;
  }

  #sessionStoreStatus(): SessionStoreStatus | undefined {
    return this.#options.sessions ? this.#options.sessions.store.status?.() : undefined;
  }

  /** What /readyz reports on. issue 13: with `cluster`, NATS is one even without the NATS session store. */
  #dependencies(): Record<string, boolean> {
    const deps = dependenciesOf(this.#sessionStoreStatus());
    if (this.#natsLink) deps.nats = (deps.nats ?? true) && this.#natsLink.state === 'up';
    if (this.#bus) deps.cluster = this.#bus.status().state === 'up';
    return deps;
  }

  #readiness(): Readiness {
    return this.#state === 'running' ? 'ready' : this.#state === 'starting' ? 'starting' : 'shutting-down';
  }

  get state(): HostState {
    return this.#state;
  }

  /** Where each listener is reachable (the real port when 0 was asked for). */
  addresses(): ListenAddress[] {
    return this.#transports.map((t) => t.address());
  }

  /** @internal Load the first version, then open the listeners, the watcher and the admin socket. */
  async start(): Promise<void> {
    try {
      // Node and ws internals first (issue 10): an unknown version fails here, coded, before anything loads or listens.
      checkInternals();
      await this.#startBus();
      await this.#swapper.reload('start');
      await this.#startCluster();
      this.#checkpoints?.start();
      await this.#sessions?.start();
      const host = this.#transportHost();
      for (const l of this.#options.listen) {
        const t = l.transport === 'ws' ? new WsTransport(l, host) : new TcpTransport(l, host);
        this.#transports.push(t);
        // A worker started for a process upgrade listens only once the old worker's connections are handed over.
        if (!this.#deferListen) await t.start();
      }
      if (this.#options.watch) {
        const w = new PluginWatcher(this.#options.plugin, this.#options.watch, (files) => this.#onFilesChanged(files));
        this.#watcher = w;
        w.track(this.#swapper.current?.bundle.inputs ?? []);
        await w.ready();
      }
      if (this.#options.admin) {
        this.#admin = new AdminServer(this.#options.admin, (cmd, options) => this.#adminCommand(cmd, options));
        await this.#admin.start();
      }
      if (this.#options.httpAdmin) {
        this.#http = new HttpAdmin(this.#options.httpAdmin, {
          command: (cmd, options) => this.#adminCommand(cmd, options),
          metrics: () => this.metrics(),
          readiness: () => this.#readiness(),
          dependencies: () => Promise.resolve(this.#dependencies()),
          events: this.#events ?? new EventStream(),
        });
        await this.#http.start();
      }
      this.#state = 'running';
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  /** issue 13: connect to NATS (following cluster.atStart) and relay this node's rooms through the bus. */
  async #startBus(): Promise<void> {
    const c = this.#options.cluster;
    if (!c) return;
    // noEcho: this node's own room messages are delivered here already, never again through NATS.
    const link = await NatsLink.open({ ...c.link, noEcho: true });
    const rooms = this.#dispatcher.rooms;
    this.#bus = new RoomBus(link, c.bus, {
      deliverHere: (room, msg) => rooms.deliverHere(room, msg),
      deliverTo: (id, data) => this.#dispatcher.connections.get(id)?.send(data) === true,
      log: (level, msg, fields) => this.log[level](fields, msg),
    });
    rooms.relayTo(this.#bus);
  }

  /**
   * issue 13: connect to NATS (following cluster.atStart) and start presence across nodes. After the first version
   * loaded, so that it hears the other nodes' members as they arrive (onPresence), before any listener opens. An
   * upgrade's new worker publishes only at its commit (startListening), with every connection it adopted: published
   * earlier, its first record would replace the old worker's (same node name) before the members had moved, and the
   * other nodes would see them leave and join again.
   */
  async #startCluster(): Promise<void> {
    const c = this.#options.cluster;
    if (!c) return;
    this.#natsLink = await NatsLink.open(c.link);
    if (!this.#deferListen) await this.#presence.start(this.#natsLink);
  }

  /**
   * @internal The pieces a process upgrade (src/handoff) works with: it moves connections and the plugin's global
   * state between two hosts in two processes. Not part of the public API.
   */
  handoffPort(): HostHandoffPort {
    return {
      dispatcher: this.#dispatcher,
      transports: this.#transports,
      current: () => this.#swapper.current,
      liveVersions: () => this.#swapper.live().map((l) => l.version.label),
      swapPhase: () => this.#swapper.phase,
      lock: this.#lock,
      hookTimeout: this.#options.hookTimeout,
      beginSendAway: () => {
        // Called at an upgrade's release: the state is the new worker's from here on.
        this.#checkpoints?.handOver();
        this.#sessions?.beginSendAway();
        // issue 13: the other nodes keep seeing the members moving to the new worker (ClusterPresence.freeze).
        this.#presence.freeze();
      },
      startListening: async () => {
        if (!this.#deferListen) return;
        this.#deferListen = false;
        for (const t of this.#transports) await t.start();
        // issue 13: presence from the commit on (see #startCluster).
        await this.#presence.start(this.#natsLink);
        // The upgrade committed: this worker's state (imported through migrate) is the one to checkpoint.
        this.#checkpoints?.activate();
      },
    };
  }

  /**
   * Build the plugin from disk and swap to it. Rejects with a coded error; the old version keeps serving. With
   * `{ ifChanged: true }` (what `hotline reload` and SIGHUP use unless `--force`), a build identical to the running
   * one (same bundle hash) swaps nothing and resolves with outcome `unchanged`.
   */
  reload(trigger: SwapTrigger = 'reload', options: ReloadOptions = {}): Promise<SwapRecord> {
    if (this.#state === 'closing' || this.#state === 'closed') return Promise.reject(new HotlineError('HOTLINE_E_SWAP_CLOSED'));
    let policy;
    try {
      policy = parsePolicy(options.policy);
    } catch (err) {
      return Promise.reject(err as HotlineError);
    }
    return this.#swapper.reload(trigger, options.ifChanged === true, policy);
  }

  /**
   * issue 12: promote the canary (every connection migrates to it), or, with no canary, migrate the pinned versions'
   * connections to the current one now. Rejects HOTLINE_E_NOTHING_TO_PROMOTE when one version is live.
   */
  promote(): Promise<SwapRecord> {
    if (this.#state === 'closing' || this.#state === 'closed') return Promise.reject(new HotlineError('HOTLINE_E_SWAP_CLOSED'));
    return this.#swapper.promote('promote');
  }

  /** Swap back to the previous build, migrating state down. Rejects HOTLINE_E_NO_PREVIOUS if there is none. */
  rollback(): Promise<SwapRecord> {
    if (this.#state === 'closing' || this.#state === 'closed') return Promise.reject(new HotlineError('HOTLINE_E_SWAP_CLOSED'));
    return this.#swapper.rollback('rollback');
  }

  status(): HostStatus {
    const v = this.#swapper.current;
    const d = this.#dispatcher;
    const store = this.#sessionStoreStatus();
    const presence = this.#presence.status();
    return {
      pid: process.pid,
      state: this.#state,
      phase: this.#swapper.phase,
      uptimeMs: Date.now() - this.#startedAt,
      plugin: v && { name: v.name, version: v.version, hash: v.bundle.hash, entry: path.relative(process.cwd(), v.bundle.entry), seq: v.stats.seq },
      isolation: this.#options.isolation,
      listen: this.#transports.map((t) => t.address()),
      connections: d.connections.size,
      messages: { in: d.messagesIn, out: d.messagesOut, dropped: d.messagesDropped },
      handlersAbandoned: d.handlersAbandoned,
      versions: this.#swapper.versions.map((s) => ({ ...s })),
      live: this.#liveStatus(),
      swaps: this.#swapper.history.list(),
      ...(this.#sessions && { sessions: this.#sessions.size, sessionsDetached: this.#sessions.detachedCount, sessionsEvicted: this.#sessions.evicted, sessionsPoisoned: this.#sessions.poisonDropped }),
      ...(store && { sessionStore: store }),
      escaped: lastResortCounts(),
      lock: this.#lock.state,
      ...(this.#checkpoints && { checkpoint: this.#checkpoints.status }),
      ...(linksOf(d).size > 0 && { links: linksOf(d).status() }),
      rooms: { count: d.rooms.size, largest: d.rooms.largest(100) },
      partialFrames: {
        bytes: this.#incomplete.totalBytes,
        holders: this.#incomplete.holders,
        heldBack: this.#incomplete.heldBack,
        heldBackTotal: this.#incomplete.heldBackTotal,
      },
      handshakes: { queued: this.#pacer.queued, refused: this.#pacer.refused },
      ...(this.#bus && { cluster: this.#bus.status() }),
      ...(presence && { presence }),
    };
  }

  /**
   * Shut down gracefully: stop accepting, close WebSocket clients with 1012 (service restart) and end TCP streams,
   * wait up to `shutdownTimeout` for them to leave, cut off the rest, dispose the plugin. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  #emitSendAway(batch: SendAwayBatch): void {
    this.emit('sendAway', batch);
    this.emit('drain', batch);
  }

  async #shutdown(): Promise<void> {
    this.#state = 'closing';
    // A running swap or upgrade step finishes first, bounded: past shutdownTimeout the shutdown takes the lock anyway.
    const hold = await this.#lock.acquire('shutdown', this.#options.shutdownTimeout);
    await this.#watcher?.close();
    await Promise.all(this.#transports.map((t) => t.stopAccepting()));
    const d = this.#dispatcher;
    // In batches, so a big server does not send every client back at once (and session clients get a hint first).
    this.#sessions?.beginSendAway();
    await sendAwayInBatches(d.connections.values(), this.#options.sendAway, (b) => this.#emitSendAway(b));
    if (!(await this.#whenNoConnections(this.#options.shutdownTimeout))) {
      for (const conn of d.connections.values()) conn.terminate();
      await this.#whenNoConnections(1000);
    }
    // After every onClose ran (their changes count), before the version is disposed.
    this.#checkpoints?.close();
    await this.#swapper.close();
    // issue 15: retiring the version released its links; whatever a failed start left is closed here.
    linksOf(this.#dispatcher).closeAll();
    this.#dispatcher.stopSweep();
    await this.#bundler.dispose();
    await this.#admin?.close();
    await this.#http?.close();
    this.#metrics?.close();
    await this.#sessions?.close();
    // issue 13: after the last onClose (whose room messages the bus still publishes); the bus unsubscribes, flushes
    // and disconnects; presence deletes this node's record, so its members leave everywhere at once.
    this.#dispatcher.rooms.relayTo(undefined);
    await this.#bus?.close();
    await this.#presence.close();
    await this.#natsLink?.close();
    this.#incomplete.close();
    this.#state = 'closed';
    hold.release();
  }

  #whenNoConnections(timeoutMs: number): Promise<boolean> {
    const d = this.#dispatcher;
    if (d.connections.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.#finishedWaiters.delete(check);
        resolve(ok);
      };
      const check = () => {
        if (d.connections.size === 0) done(true);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      this.#finishedWaiters.add(check);
    });
  }

  #transportHost(): TransportHost {
    const d = this.#dispatcher;
    const limits = this.#options.limits;
    const sessions = this.#sessions;
    const admit = createAdmit(limits, (err) => this.#connectionError(err));
    return {
      limits,
      incomplete: this.#incomplete,
      pacer: this.#pacer,
      // Live sockets only: a detached session keeps its Connection for the plugin but holds no socket (it has its own
      // bound, sessions.maxDetached); a hotline.v1 socket before its hello holds a socket but no Connection yet.
      canAccept: () =>
        this.#state !== 'closing' &&
        this.#state !== 'closed' &&
        d.connections.size - (sessions?.detachedCount ?? 0) + (sessions?.pendingHellos ?? 0) < limits.maxConnections,
      accept: (link: Link) => new Connection(link, d),
      reportError: (err, conn) => this.#connectionError(err, conn),
      ...(sessions && { sessions }),
      ...(admit && { admit }),
    };
  }

  #liveStatus(): LiveVersionStatus[] {
    const d = this.#dispatcher;
    const canary = this.#swapper.canary;
    const now = Date.now();
    return this.#swapper.live().map(({ version: v, role, since, maxAge }) => {
      const s = v.stats;
      const p99 = v.latency?.p99();
      return {
        seq: s.seq,
        label: v.label,
        hash: s.hash,
        role,
        connections: d.countOf(v),
        messages: s.messages,
        errors: s.errors,
        errorRate: s.errors / Math.max(s.messages, 1),
        ...(p99 !== undefined && { p99Ms: Math.round(p99 * 1000) / 1000 }),
        ...(since !== undefined && { ageMs: now - since }),
        ...(maxAge !== undefined && { maxAgeMs: maxAge }),
        ...(role === 'canary' && canary && { canary: { share: canary.policy.share, windowMs: canary.policy.window, errorRate: canary.rates().canary, stableErrorRate: canary.rates().stable } }),
      };
    });
  }

  #connectionError(err: HotlineError, conn?: Connection): void {
    this.log.warn({ code: err.code, conn: conn?.id }, err.message);
    this.emit('connection-error', err, conn?.id);
  }

  #onFilesChanged(files: string[]): void {
    const inputs = new Set(this.#swapper.current?.bundle.inputs ?? []);
    const entry = path.resolve(this.#options.plugin);
    // Only files the plugin is built from matter; a README beside it does not.
    if (!this.#lastSwapFailed && !files.some((f) => inputs.has(path.resolve(f)) || path.resolve(f) === entry)) return;
    this.#swapper.reload('watch').catch((err: unknown) => {
      if (!isHotlineError(err)) this.log.error({ err }, 'reload after a file change failed');
    });
  }

  async #adminCommand(cmd: AdminCommand, options: AdminOptions): Promise<unknown> {
    switch (cmd) {
      case 'reload':
        return this.reload('admin', { ifChanged: !options.force, ...(options.policy !== undefined && { policy: options.policy }) });
      case 'rollback':
        return this.rollback();
      case 'promote':
        return this.promote();
      case 'status':
        return this.status();
      case 'upgrade':
        throw new HotlineError('HOTLINE_E_CONFIG', 'a process upgrade needs the supervisor of `hotline start`; this host runs without one');
    }
  }
}

/**
 * Load a plugin, start its listeners, and return the running host.
 *
 * @example
 * import { createHost } from 'hotline';
 *
 * const host = await createHost({
 *   plugin: './chat/plugin.ts',
 *   listen: [{ transport: 'ws', port: 8080 }, { transport: 'tcp', port: 9000, framing: 'lines' }],
 *   watch: true,
 * });
 * host.on('swap', (record) => console.log('now serving', record.to));
 * await host.reload();      // or edit a file of the plugin
 * await host.close();
 */
export async function createHost(options: HostOptions): Promise<Host> {
  const host = new Host(options);
  await host.start();
  return host;
}
