/**
 * The host's Prometheus metrics: the one module that owns their names (docs/operations.md lists them). Prometheus
 * naming: a `hotline_` prefix, `_total` on counters, base units (`_seconds`, `_bytes`). Labels stay bounded: a
 * version label (at most MAX_VERSION_LABELS values), an error code (the HOTLINE_E_* catalogue), a transport, a swap
 * phase, trigger or outcome; never a connection id or an address.
 *
 * Three kinds of source, so the message path pays next to nothing:
 * - read at scrape time from counters the host already keeps (messages in and out, connections, queued bytes);
 * - the handler duration histogram (handler-histogram.ts), the one thing observed per message;
 * - counted from the host's events (swaps, errors, sessions), a few per minute.
 */
import { Counter, Histogram, Registry } from 'prom-client';
import type { DispatchTarget, Dispatcher } from '../connection/dispatcher.js';
import type { RoomBusStatus } from '../cluster/room-bus.js';
import type { SessionStoreStatus } from '../session/store.js';
import type { SwapRecord } from '../swap/history.js';
import { HandlerHistogram } from './handler-histogram.js';
import { registerFamily, type MetricFamily, type Sample, familiesOf } from './metric-family.js';
import { ProcessMetrics } from './process-metrics.js';

/** What the metrics read from a host. */
export interface MetricsFeed {
  dispatcher: Dispatcher;
  /** The version label of a dispatch target (a loaded version): its plugin version, e.g. "1.3.0". */
  versionOf(target: DispatchTarget): string;
  /** The label of the version serving now, if one loaded. */
  currentVersion(): string | undefined;
  /** Session counts, when sessions are on. */
  sessions(): { live: number; detached: number; evicted: number } | undefined;
  /** The session store's own report, when it gives one (the NATS store: its link state, deferred writes, conflicts). */
  sessionStore(): SessionStoreStatus | undefined;
  /** issue 13: the cluster bus's report, with the `cluster` option. */
  cluster?(): RoomBusStatus | undefined;
}

/** Whether a store's dependency is reachable now, by the dependency's name: `{ nats: true }`. Empty for local stores. */
export function dependenciesOf(store: SessionStoreStatus | undefined): Record<string, boolean> {
  return store?.store === 'nats' ? { nats: store.state === 'up' } : {};
}

/**
 * Counters a process upgrade hands to the new worker itself (connection-export.ts carries the dispatcher's totals):
 * the supervisor's running totals must not add the old worker's value of these a second time (metric-totals.ts).
 */
export const CARRIED_BY_UPGRADE: ReadonlySet<string> = new Set(['hotline_messages_received_total', 'hotline_messages_sent_total', 'hotline_messages_dropped_total']);

/** Bounds in seconds for swap phases and whole swaps: a rebuild is ~3 ms, a slow migrate seconds. */
const SWAP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class HostMetrics {
  readonly registry = new Registry();
  #feed: MetricsFeed;
  #handler: HandlerHistogram;
  #process: ProcessMetrics;
  #handlerErrors: Counter<'version' | 'code'>;
  #swaps: Counter<'outcome' | 'trigger'>;
  #swapSeconds: Histogram<'outcome'>;
  #phaseSeconds: Histogram<'phase'>;
  #connectionErrors: Counter<'code'>;
  #slowConsumers: Counter;
  #resumes: Counter;
  #lost: Counter<'code'>;
  #probationFailures: Counter<'version'>;
  #sentAway: Counter;
  #closed = false;

  constructor(feed: MetricsFeed) {
    this.#feed = feed;
    const registers = [this.registry];
    const d = feed.dispatcher;
    this.#handler = new HandlerHistogram((t) => feed.versionOf(t));
    d.observer = this.#handler;
    this.#process = new ProcessMetrics(this.registry);

    registerFamily(this.registry, 'hotline_connections', 'Open connections, by transport and the version serving them.', 'gauge', () => this.#connections());
    registerFamily(this.registry, 'hotline_messages_received_total', 'Messages received from clients.', 'counter', () => [{ labels: {}, value: d.messagesIn }]);
    registerFamily(this.registry, 'hotline_messages_sent_total', 'Messages sent to clients (conn.send and broadcasts).', 'counter', () => [{ labels: {}, value: d.messagesOut }]);
    registerFamily(this.registry, 'hotline_messages_dropped_total', 'Messages received and never handled: their connection closed or overflowed first.', 'counter', () => [
      { labels: {}, value: d.messagesDropped },
    ]);
    registerFamily(this.registry, 'hotline_handlers_abandoned_total', 'Async handlers abandoned at hangTimeout (HOTLINE_E_HANDLER_HUNG).', 'counter', () => [
      { labels: {}, value: d.handlersAbandoned },
    ]);
    registerFamily(this.registry, 'hotline_handler_duration_seconds', 'onMessage handler time, from dispatch to settle, per version.', 'histogram', () =>
      this.#handler.samples('hotline_handler_duration_seconds'),
    );
    registerFamily(this.registry, 'hotline_send_queue_bytes', 'Bytes queued for sending across all connections (not yet written to the socket).', 'gauge', () => [
      { labels: {}, value: this.#queuedBytes() },
    ]);
    registerFamily(this.registry, 'hotline_version_info', 'The plugin version serving now (value 1).', 'gauge', () => {
      const v = feed.currentVersion();
      return v === undefined ? [] : [{ labels: { version: v }, value: 1 }];
    });
    registerFamily(this.registry, 'hotline_sessions', 'Resumable sessions alive in this process, by state.', 'gauge', () => {
      const s = feed.sessions();
      return s ? [{ labels: { state: 'attached' }, value: s.live - s.detached }, { labels: { state: 'detached' }, value: s.detached }] : [];
    });
    registerFamily(this.registry, 'hotline_sessions_evicted_total', 'Detached sessions evicted because sessions.maxDetached were waiting.', 'counter', () => {
      const s = feed.sessions();
      return s ? [{ labels: {}, value: s.evicted }] : [];
    });

    // The NATS session store (issue 13): reachable or not, and what it had to keep locally meanwhile.
    const nats = () => {
      const st = feed.sessionStore();
      return st?.store === 'nats' ? st : undefined;
    };
    registerFamily(this.registry, 'hotline_nats_up', 'Whether NATS (the session store) is reachable now: 1 up, 0 connecting or degraded.', 'gauge', () => {
      const st = nats();
      return st ? [{ labels: {}, value: st.state === 'up' ? 1 : 0 }] : [];
    });
    registerFamily(this.registry, 'hotline_session_store_deferred_writes_total', 'Session writes kept locally because NATS was unreachable, written back when it is up.', 'counter', () => {
      const st = nats();
      return st ? [{ labels: {}, value: Number(st.deferredWrites) || 0 }] : [];
    });
    registerFamily(this.registry, 'hotline_session_conflicts_total', "Sessions this node lost to another node's takeover (HOTLINE_E_SESSION_CONFLICT).", 'counter', () => {
      const st = nats();
      return st ? [{ labels: {}, value: Number(st.conflicts) || 0 }] : [];
    });

    // issue 13: the cluster bus (room messages across nodes), read from its counters at scrape time.
    const bus = () => feed.cluster?.();
    const busFamily = (name: string, help: string, type: 'gauge' | 'counter', read: (c: RoomBusStatus) => Sample[]) =>
      registerFamily(this.registry, name, help, type, () => {
        const c = bus();
        return c ? read(c) : [];
      });
    busFamily('hotline_cluster_up', 'Whether NATS (the cluster bus) is reachable now: 1 up, 0 degraded or closed.', 'gauge', (c) => [{ labels: {}, value: c.state === 'up' ? 1 : 0 }]);
    busFamily('hotline_cluster_room_subscriptions', 'Rooms this node is subscribed to on NATS (those with members here).', 'gauge', (c) => [{ labels: {}, value: c.subscriptions }]);
    busFamily('hotline_cluster_messages_total', 'Room messages published to the other nodes, and received from them.', 'counter', (c) => [
      { labels: { direction: 'published' }, value: c.published },
      { labels: { direction: 'received' }, value: c.received },
    ]);
    busFamily('hotline_cluster_buffered_messages', 'Room messages held while NATS is unreachable (whileDown: buffer).', 'gauge', (c) => [{ labels: {}, value: c.buffered }]);
    busFamily('hotline_cluster_dropped_messages_total', 'Room messages not published to the other nodes (HOTLINE_E_CLUSTER_DROPPED, HOTLINE_E_CLUSTER_PUBLISH).', 'counter', (c) => [
      { labels: { code: 'HOTLINE_E_CLUSTER_DROPPED' }, value: c.dropped },
      { labels: { code: 'HOTLINE_E_CLUSTER_PUBLISH' }, value: c.refusedPublishes },
    ]);
    busFamily('hotline_cluster_missed_messages_total', "Messages of other nodes missing in their sequence here (lost between nodes).", 'counter', (c) => [{ labels: {}, value: c.missed }]);
    busFamily('hotline_cluster_duplicate_messages_total', 'Messages of other nodes seen twice or out of order here (not delivered).', 'counter', (c) => [{ labels: {}, value: c.duplicates }]);
    busFamily('hotline_cluster_refused_messages_total', 'Inbound room messages refused (HOTLINE_E_CLUSTER_MESSAGE), by reason.', 'counter', (c) => [
      { labels: { reason: 'too-large' }, value: c.refused['too-large'] },
      { labels: { reason: 'malformed' }, value: c.refused.malformed },
    ]);

    this.#handlerErrors = new Counter({ name: 'hotline_handler_errors_total', help: 'Plugin handler errors, by version and code.', labelNames: ['version', 'code'], registers });
    this.#swaps = new Counter({ name: 'hotline_swaps_total', help: 'Swap attempts, by outcome (switched, unchanged, aborted) and trigger.', labelNames: ['outcome', 'trigger'], registers });
    this.#swapSeconds = new Histogram({ name: 'hotline_swap_duration_seconds', help: 'Whole swap time, by outcome.', labelNames: ['outcome'], buckets: SWAP_BUCKETS, registers });
    this.#phaseSeconds = new Histogram({ name: 'hotline_swap_phase_duration_seconds', help: 'Time spent in each swap phase.', labelNames: ['phase'], buckets: SWAP_BUCKETS, registers });
    this.#connectionErrors = new Counter({ name: 'hotline_connection_errors_total', help: 'Connection-level limits hit, by code.', labelNames: ['code'], registers });
    this.#slowConsumers = new Counter({ name: 'hotline_slow_consumer_closes_total', help: 'Connections closed because their send queue exceeded maxSendBuffer.', registers });
    this.#resumes = new Counter({ name: 'hotline_session_resumes_total', help: 'Sessions resumed by their client (in this process or from the store).', registers });
    this.#lost = new Counter({ name: 'hotline_sessions_lost_total', help: 'Resumes refused: the client got a new session, by code.', labelNames: ['code'], registers });
    this.#probationFailures = new Counter({ name: 'hotline_probation_failures_total', help: 'Versions rolled back by probation.', labelNames: ['version'], registers });
    this.#sentAway = new Counter({ name: 'hotline_sent_away_total', help: 'Clients sent away by a shutdown or an upgrade (1012 and a reconnect hint).', registers });
    for (const outcome of ['switched', 'unchanged', 'aborted']) this.#swapSeconds.zero({ outcome });
  }

  /** The exposition text (text/plain; version=0.0.4). */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** The families as plain data: what a worker sends its supervisor. */
  families(): Promise<MetricFamily[]> {
    return familiesOf(this.registry);
  }

  /** A swap ended: switched, unchanged or aborted. */
  swapEnded(record: SwapRecord): void {
    this.#swaps.inc({ outcome: record.outcome, trigger: record.trigger });
    this.#swapSeconds.observe({ outcome: record.outcome }, record.totalMs / 1000);
    for (const [phase, ms] of Object.entries(record.durations)) this.#phaseSeconds.observe({ phase }, ms / 1000);
  }

  handlerError(version: string, code: string): void {
    this.#handlerErrors.inc({ version, code });
  }

  connectionError(code: string): void {
    this.#connectionErrors.inc({ code });
    if (code === 'HOTLINE_E_SLOW_CONSUMER') this.#slowConsumers.inc();
  }

  sessionResumed(): void {
    this.#resumes.inc();
  }

  sessionLost(code: string): void {
    this.#lost.inc({ code });
  }

  probationFailed(version: string): void {
    this.#probationFailures.inc({ version });
  }

  sentAway(count: number): void {
    this.#sentAway.inc(count);
  }

  /** Stop observing the message path and the event loop. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#feed.dispatcher.observer === this.#handler) this.#feed.dispatcher.observer = undefined;
    this.#process.close();
  }

  #connections(): Sample[] {
    const version = this.#feed.currentVersion() ?? 'none';
    let ws = 0;
    let tcp = 0;
    for (const conn of this.#feed.dispatcher.connections.values()) {
      if (conn.transport === 'ws') ws++;
      else tcp++;
    }
    return [
      { labels: { transport: 'ws', version }, value: ws },
      { labels: { transport: 'tcp', version }, value: tcp },
    ];
  }

  #queuedBytes(): number {
    let n = 0;
    for (const conn of this.#feed.dispatcher.connections.values()) n += conn.link.bufferedAmount;
    return n;
  }
}
