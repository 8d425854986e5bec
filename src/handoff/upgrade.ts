/**
 * The upgrade transaction (DESIGN.md §6), run by the supervisor, modelled on cloudflare/tableflip:
 *
 *   spawning ─► waiting-ready ─► moving ─► committing ─► done
 *       │             │             │
 *       └─────────────┴─────────────┴──► aborted (the old worker resumes everything it holds; coded error)
 *
 * moving: the old worker suspends dispatch, stops listening, and sends each connection (socket handle, unconsumed
 * bytes, queued messages, state), then the global state; the supervisor forwards each item to the new worker, which
 * acknowledges it. The commit point is the `commit` message to the new worker: before it, the new worker has read
 * nothing from any socket, so killing it loses nothing.
 */
import type net from 'node:net';
import { HotlineError } from '../errors.js';
import { rawHandle, stopReading } from '../internals/node-internals.js';
import { HandlePipeline } from './handle-pipeline.js';
import type { BoundListener } from './listeners.js';
import type { FromWorker, ToWorker } from './protocol.js';
import { type Clock, systemClock } from './clock.js';
import { type WorkerProcess, fromWire } from './worker-process.js';

export type UpgradePhase = 'spawning' | 'waiting-ready' | 'moving' | 'committing' | 'done' | 'aborted';

/** Progress, readable while the upgrade runs (`hotline status`, the progress bar of `hotline upgrade`). */
export interface UpgradeProgress {
  phase: UpgradePhase;
  /** Connections acknowledged by the new worker. */
  moved: number;
  /** Connections the old worker sent so far. */
  sent: number;
  /** Connections the old worker had when the handoff started (known once it finished sending). */
  total: number | undefined;
  /** The new worker's PID. */
  nextPid: number;
}

/** When each step ended, in ms since the upgrade started: where an upgrade spends its time. */
export interface UpgradeTimings {
  /** The new worker reported ready (spawned, plugin built and loaded). */
  ready?: number;
  /** The first connection reached the supervisor (only when they travel through it, not through the lane). */
  firstConn?: number;
  /** The old worker had queued every connection and the global state. */
  exported?: number;
  /** The new worker acknowledged the last item. */
  acked?: number;
  /** The new worker listens and serves. */
  committed?: number;
}

/** The final summary. */
export interface UpgradeSummary {
  outcome: 'committed' | 'aborted';
  fromPid: number;
  toPid: number;
  moved: number;
  sentAway: number;
  failed: number;
  durationMs: number;
  /** Step times (see UpgradeTimings) and the serialised size of all plugin state moved. */
  timings: UpgradeTimings;
  stateBytes: number;
  /** issue 15: outbound links handed over with their socket, and with their state only (reconnected by the new worker). */
  links?: { moved: number; reconnecting: number };
  error?: { code: string; message: string };
}

export interface UpgradeDeps {
  old: WorkerProcess;
  /** Fork the new worker and send it its listener handles and config (upgrade mode). */
  spawn(): WorkerProcess;
  listeners: readonly BoundListener[];
  readyTimeout: number;
  ackTimeout: number;
  settleTimeout: number;
  /** Timeouts and step times (the supervisor's env clock). Default: the real one. */
  clock?: Clock;
}

export class Upgrade {
  readonly progress: UpgradeProgress = { phase: 'spawning', moved: 0, sent: 0, total: undefined, nextPid: 0 };
  #deps: UpgradeDeps;
  #clock: Clock;
  #startedAt: number;
  #next: WorkerProcess | undefined;
  #timer: unknown;
  /** Our copies of socket handles on their way to the new worker; closed once sent (or on abort). */
  #inFlight = new Set<{ close(): void }>();
  #sentAway = 0;
  #exported = false;
  #exportSent = false;
  #forwarded = 0;
  #acks = 0;
  #stateBytes = 0;
  #links: UpgradeSummary['links'];
  #timings: UpgradeTimings = {};
  /** Forwards to the new worker, keeping Node's handle queue short (handle-pipeline.ts). */
  #out: HandlePipeline<ToWorker> | undefined;
  #settle!: (s: UpgradeSummary) => void;
  #done = false;

  constructor(deps: UpgradeDeps) {
    this.#deps = deps;
    this.#clock = deps.clock ?? systemClock;
    this.#startedAt = this.#clock.now();
  }

  /** The new worker, once committed. */
  get next(): WorkerProcess | undefined {
    return this.#next;
  }

  run(): Promise<UpgradeSummary> {
    return new Promise((resolve) => {
      this.#settle = resolve;
      this.#spawn();
    });
  }

  #spawn(): void {
    const next = this.#deps.spawn();
    this.#next = next;
    // Node starts reading our end of the handle lane, but what the new worker says through it (transfer-codec.ts) is
    // for the old worker, which gets this end at ready: stop it before anything arrives.
    const end = next.child.stdio[4] as net.Socket | null | undefined;
    if (end) {
      end.pause();
      stopReading(end);
    }
    this.#out = new HandlePipeline<ToWorker>((msg, handle, written) => next.send(msg, handle, () => written()));
    this.progress.nextPid = next.pid;
    this.progress.phase = 'waiting-ready';
    this.#arm(this.#deps.readyTimeout, () =>
      this.#abort(new HotlineError('HOTLINE_E_UPGRADE_READY_TIMEOUT', `the new worker (pid ${next.pid}) was not ready within ${this.#deps.readyTimeout} ms; killed it`)),
    );
    next.exited.then(({ code, signal }) => {
      if (this.#done) return;
      this.#abort(new HotlineError('HOTLINE_E_UPGRADE_WORKER_EXIT', `the new worker (pid ${next.pid}) exited (${signal ?? `code ${code}`}) during the ${this.progress.phase} phase`));
    });
    this.#deps.old.exited.then(() => {
      if (this.#done) return;
      this.#abort(new HotlineError('HOTLINE_E_WORKER_EXIT', 'the old worker exited during the upgrade'));
    });
    next.child.on('message', this.#onNext);
    this.#deps.old.child.on('message', this.#onOld);
  }

  /** End the upgrade now with `err` (the supervisor stops): aborted, or finished if past its commit point. */
  cancel(err: HotlineError): void {
    this.#abort(err);
  }

  #onNext = (msg: FromWorker) => {
    if (this.#done) return;
    switch (msg.t) {
      case 'ready':
        this.#mark('ready');
        this.progress.phase = 'moving';
        this.#arm(this.#deps.ackTimeout, () => this.#stalled());
        this.#exportSent = true;
        this.#giveLane();
        this.#deps.old.send({ t: 'export', settleTimeout: this.#deps.settleTimeout });
        return;
      case 'fatal':
      case 'nack':
        return this.#abort(new HotlineError('HOTLINE_E_UPGRADE_REFUSED', `the new worker refused: ${fromWire(msg.error).code}: ${msg.error.message}`));
      case 'ack':
        this.#acks = msg.items;
        this.progress.moved = msg.n;
        this.#arm(this.#deps.ackTimeout, () => this.#stalled());
        return this.#maybeCommit();
      case 'committed':
        this.#mark('committed');
        return this.#finish();
    }
  };

  #onOld = (msg: FromWorker, handle: unknown) => {
    if (this.#done) return;
    switch (msg.t) {
      case 'conn': {
        if (this.progress.sent === 0) this.#mark('firstConn');
        this.progress.sent++;
        this.#forwarded++;
        const h = handle as { close(): void };
        this.#inFlight.add(h);
        // Our copy is closed once the kernel has the descriptor in flight: the supervisor must not keep a
        // connection open (its FIN would never be sent) nor leak 10,000 descriptors.
        this.#out!.push(msg, h, () => {
          if (this.#inFlight.delete(h)) h.close();
        });
        return;
      }
      case 'state':
        this.#forwarded++;
        this.#out!.push(msg);
        return;
      case 'exported':
        this.#mark('exported');
        this.#exported = true;
        this.#sentAway = msg.sentAway;
        this.#stateBytes = msg.stateBytes;
        this.#links = msg.links;
        this.#forwarded += msg.laneItems ?? 0;
        this.progress.sent = Math.max(this.progress.sent, msg.moved);
        this.progress.total = msg.moved;
        return this.#maybeCommit();
      case 'nack':
        return this.#abort(fromWire(msg.error));
    }
  };

  #maybeCommit(): void {
    if (!this.#exported || this.#acks < this.#forwarded || this.progress.phase !== 'moving') return;
    this.#mark('acked');
    this.progress.phase = 'committing';
    // The commit point: from here the new worker reads and serves; the old one lets go.
    this.#out!.push({ t: 'commit' });
    this.#deps.old.send({ t: 'release' });
    this.#arm(this.#deps.ackTimeout, () => this.#finish());
  }

  #stalled(): void {
    this.#abort(new HotlineError('HOTLINE_E_UPGRADE_TIMEOUT', `the new worker acknowledged nothing for ${this.#deps.ackTimeout} ms (${this.progress.moved}/${this.progress.sent} connections); killed it`));
  }

  /**
   * Hand the old worker its end of the new worker's handle lane, so connections go straight to the new worker
   * (handle-lane.ts) instead of through two acknowledged IPC hops. An old worker that does not know the message (an
   * older build) ignores it and sends through the supervisor, which still forwards.
   */
  #giveLane(): void {
    const end = this.#next?.child.stdio[4] as net.Socket | null | undefined;
    const handle = end ? rawHandle(end) : undefined;
    if (!end || !handle) return;
    this.#deps.old.send({ t: 'lane' }, handle, () => end.destroy());
  }

  #mark(step: keyof UpgradeTimings): void {
    this.#timings[step] ??= this.#clock.now() - this.#startedAt;
  }

  #arm(ms: number, fn: () => void): void {
    this.#clock.clearTimeout(this.#timer);
    this.#timer = this.#clock.setTimeout(fn, ms);
  }

  #cleanup(): void {
    this.#done = true;
    this.#clock.clearTimeout(this.#timer);
    this.#next?.child.off('message', this.#onNext);
    this.#deps.old.child.off('message', this.#onOld);
    // Forwards not yet handed to the channel are dropped; their handles are among those closed below.
    this.#out?.discard(() => true);
    for (const h of this.#inFlight) h.close();
    this.#inFlight.clear();
    // Our end of the lane, if it never went to the old worker (an abort before ready): it no longer reads, so it
    // would not see the new worker's exit and close itself.
    if (!this.#exportSent) (this.#next?.child.stdio[4] as net.Socket | null | undefined)?.destroy();
  }

  #finish(): void {
    if (this.#done) return;
    this.#cleanup();
    this.progress.phase = 'done';
    this.#settle({
      outcome: 'committed',
      fromPid: this.#deps.old.pid,
      toPid: this.#next!.pid,
      moved: this.progress.moved,
      sentAway: this.#sentAway,
      failed: Math.max(0, this.progress.sent - this.progress.moved),
      durationMs: this.#clock.now() - this.#startedAt,
      timings: this.#timings,
      stateBytes: this.#stateBytes,
      ...(this.#links && { links: this.#links }),
    });
  }

  #abort(err: HotlineError): void {
    if (this.#done) return;
    // A failure after the commit message is no longer abortable: the new worker is serving.
    if (this.progress.phase === 'committing') return this.#finish();
    this.#cleanup();
    this.progress.phase = 'aborted';
    this.#next?.kill('SIGKILL');
    const old = this.#deps.old;
    if (old.alive && this.#exportSent) {
      // The old worker closed its listeners for the handoff: give it copies again, then tell it to resume.
      this.#deps.listeners.forEach((l, index) => old.send({ t: 'listener', index, bound: { host: l.host, port: l.port } }, l.handle));
      old.send({ t: 'abort' });
    }
    const toPid = this.#next?.pid ?? 0;
    this.#next = undefined;
    this.#settle({
      outcome: 'aborted',
      fromPid: old.pid,
      toPid,
      moved: 0,
      sentAway: 0,
      failed: 0,
      durationMs: this.#clock.now() - this.#startedAt,
      timings: this.#timings,
      stateBytes: this.#stateBytes,
      error: err.toJSON(),
    });
  }
}
