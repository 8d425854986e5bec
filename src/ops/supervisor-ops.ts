/**
 * The HTTP admin of `hotline start`, owned by the supervisor so it stays up across upgrades and worker restarts
 * (issue 14). It reports the serving worker's metrics (read over IPC at each scrape) as running totals that never
 * reset (metric-totals.ts), plus what only the supervisor knows: upgrades, restarts, hung workers. Its event stream
 * carries the supervisor's upgrades and the serving worker's swaps, forwarded over IPC.
 */
import { Counter, Histogram, Registry } from 'prom-client';
import type { AdminHandler } from '../admin/admin-connection.js';
import { EventStream, type OpsEvent, type OpsEventType } from './event-stream.js';
import { HttpAdmin, type HttpAdminConfig, type Readiness } from './http-admin.js';
import type { HttpAdminAddress } from './http-address.js';
import { type MetricFamily, familiesOf, registerFamily } from './metric-family.js';
import { MetricTotals, checkFamilies } from './metric-totals.js';
import { CARRIED_BY_UPGRADE } from './host-metrics.js';

/** Upgrade durations in seconds: 1,000 idle connections move in about 0.3 s, a slow ready takes many. */
const UPGRADE_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Event types a worker may forward; anything else from the IPC channel is dropped. */
const WORKER_EVENTS: ReadonlySet<OpsEventType> = new Set(['phase', 'swap', 'swap-error', 'probation-failed']);

export interface SupervisorOpsDeps {
  /** The admin socket's command table (the supervisor's). */
  command: AdminHandler;
  readiness(): Readiness;
  /** The serving worker's metric families, or undefined when none answers in time. */
  workerFamilies(): Promise<{ pid: number; families: unknown } | undefined>;
}

/** What the supervisor reports of an upgrade (a subset of UpgradeSummary, so this folder needs none of handoff/). */
export interface UpgradeOutcome {
  outcome: string;
  moved: number;
  sentAway: number;
  failed: number;
  durationMs: number;
}

export class SupervisorOps {
  readonly events = new EventStream();
  #deps: SupervisorOpsDeps;
  #registry = new Registry();
  #totals = new MetricTotals();
  #http: HttpAdmin;
  #upgrades: Counter<'outcome'>;
  #upgradeSeconds: Histogram<'outcome'>;
  #moved: Counter<'result'>;
  #restarts: Counter;
  #hangs: Counter;

  /** Throws HOTLINE_E_HTTP_ADMIN or HOTLINE_E_HTTP_ADMIN_EXPOSED, before anything listens. */
  constructor(config: HttpAdminConfig, deps: SupervisorOpsDeps) {
    this.#deps = deps;
    const registers = [this.#registry];
    this.#upgrades = new Counter({ name: 'hotline_upgrades_total', help: 'Process upgrades, by outcome (committed, aborted).', labelNames: ['outcome'], registers });
    this.#upgradeSeconds = new Histogram({ name: 'hotline_upgrade_duration_seconds', help: 'Process upgrade time, by outcome.', labelNames: ['outcome'], buckets: UPGRADE_BUCKETS, registers });
    this.#moved = new Counter({ name: 'hotline_upgrade_connections_total', help: 'Connections at upgrades: moved to the new worker, sent away (to resume), failed.', labelNames: ['result'], registers });
    this.#restarts = new Counter({ name: 'hotline_worker_restarts_total', help: 'Worker processes restarted after a crash or a hang.', registers });
    this.#hangs = new Counter({ name: 'hotline_worker_hangs_total', help: 'Workers killed by the watchdog (HOTLINE_E_WORKER_HUNG).', registers });
    for (const outcome of ['committed', 'aborted']) this.#upgrades.inc({ outcome }, 0);
    this.#http = new HttpAdmin(config, {
      command: deps.command,
      readiness: deps.readiness,
      dependencies: () => this.#dependencies(),
      metrics: () => this.text(),
      events: this.events,
    });
  }

  get address(): HttpAdminAddress {
    return this.#http.address;
  }

  start(): Promise<void> {
    return this.#http.start();
  }

  close(): Promise<void> {
    return this.#http.close();
  }

  /** The exposition: the supervisor's own metrics, then the workers' running totals. */
  async text(): Promise<string> {
    const w = await this.#deps.workerFamilies().catch(() => undefined);
    if (w) this.#totals.update(w.pid, checkFamilies(w.families));
    const all: MetricFamily[] = [...(await familiesOf(this.#registry)), ...this.#totals.report()];
    const out = new Registry();
    for (const f of all) registerFamily(out, f.name, f.help, f.type, () => f.values);
    return out.metrics();
  }

  /**
   * The serving worker's dependencies, from its own metrics (hotline_nats_up, hotline_cluster_up): the worker holds the NATS connection,
   * and the families are the one report of it that crosses the IPC channel. A worker that does not answer in time
   * reports none (readiness then says whether a worker is alive).
   */
  async #dependencies(): Promise<Record<string, boolean>> {
    const w = await this.#deps.workerFamilies().catch(() => undefined);
    const families = w && checkFamilies(w.families);
    const nats = families?.find((f) => f.name === 'hotline_nats_up')?.values[0];
    // issue 13: the cluster bus's own NATS connection (rooms across nodes), when the worker has one.
    const cluster = families?.find((f) => f.name === 'hotline_cluster_up')?.values[0];
    return { ...(nats && { nats: nats.value === 1 }), ...(cluster && { cluster: cluster.value === 1 }) };
  }

  /** The latest families of worker `pid`, read outside a scrape (an upgrade's old worker, just before it leaves). */
  workerSnapshot(pid: number, families: unknown): void {
    this.#totals.update(pid, checkFamilies(families));
  }

  /** Worker `pid` was replaced by an upgrade: its counters join the running totals (but those the upgrade carried). */
  workerUpgraded(pid: number): void {
    this.#totals.retire(pid, CARRIED_BY_UPGRADE);
  }

  upgradeEnded(s: UpgradeOutcome): void {
    this.#upgrades.inc({ outcome: s.outcome });
    this.#upgradeSeconds.observe({ outcome: s.outcome }, s.durationMs / 1000);
    this.#moved.inc({ result: 'moved' }, s.moved);
    this.#moved.inc({ result: 'sent_away' }, s.sentAway);
    this.#moved.inc({ result: 'failed' }, s.failed);
    this.events.publish('upgrade', s);
  }

  upgradeProgress(progress: unknown): void {
    this.events.publish('upgrade-progress', progress);
  }

  workerRestarted(pid: number): void {
    this.#restarts.inc();
    this.events.publish('worker-restart', { pid });
  }

  workerHung(): void {
    this.#hangs.inc();
  }

  /** An event the serving worker forwarded over IPC: checked, then published. */
  workerEvent(event: unknown): void {
    if (event === null || typeof event !== 'object') return;
    const e = event as Partial<OpsEvent>;
    if (typeof e.type !== 'string' || !WORKER_EVENTS.has(e.type as OpsEventType)) return;
    this.events.publish(e.type as OpsEventType, e.data);
  }
}
