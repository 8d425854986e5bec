/**
 * A worker process run by the supervisor: one host on the listeners the supervisor owns, plus both sides of an
 * upgrade (export when it is the old worker, adopt when it is the new one). It exits when the supervisor goes away,
 * so a `kill -9` of the supervisor never leaves an orphan holding the ports.
 *
 * A state machine (STYLE.md 14): each supervisor message has one handler, which names the phases that take it; in
 * any other phase the message is refused by name (HOTLINE_E_WORKER_PHASE, logged, and answered when the supervisor
 * waits for an answer), never acted on half-ready.
 *
 *   waiting ─start─► starting ─► serving ─export─► exporting ─release─► leaving
 *                        │          ▲                 │
 *                        │          └──── resuming ◄──┘ abort
 *                        └─► adopting ─commit─► committing ─► serving        (a worker started for an upgrade)
 *   any phase ─shutdown─► leaving
 *
 * `HOTLINE_FAULT` (read once at start) injects upgrade failures for tests: `ready-timeout` never reports ready,
 * `refuse-ack` refuses the first connection handed to it, `stall:N` stops acknowledging after N connections,
 * `refuse-link` refuses the first link handed to it (issue 15).
 */
import { closeSync } from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import pino, { type Logger } from 'pino';
import { HotlineError, isHotlineError, messageOf } from '../errors.js';
import { createHost, type Host } from '../host/host.js';
import type { ListenOptions } from '../transport/transport.js';
import { WsTransport } from '../transport/ws-transport.js';
import { TcpTransport } from '../transport/tcp-transport.js';
import { listen } from '../transport/listen.js';
import { prettyDestination } from '../log/pretty-log.js';
import { createStaticServer } from '../static/static-server.js';
import { tunedHostOptions } from '../config/tuning.js';
import { checkBuild } from './build-report.js';
import { ConnectionAdopter } from './connection-adopt.js';
import { ConnectionExporter } from './connection-export.js';
import { HandleLane, LANE_FD } from './handle-lane.js';
import { HandlePipeline } from './handle-pipeline.js';
import { type BoundAddress, checkListenerHandle } from './listeners.js';
import type { ConnTransfer, FromWorker, LinkTransfer, ListenerSpec, StateTransfer, ToWorker, WireError, WorkerConfig } from './protocol.js';
import { LeasedSessionStore } from './session-lease.js';
import { LANE_HELLO, type LaneMessage, TransferCodec } from './transfer-codec.js';
import { heartbeatInterval } from './watchdog.js';
import { FD_RESERVE_ENV } from './worker-process.js';
import { forwardOpsEvents } from '../ops/forward-events.js';

/**
 * How long an acknowledgement may wait to be coalesced with later ones (the supervisor's ack timeout is 10 s). Each
 * one stalled the new worker's adoption ~1 ms on the 2-core test machine (an IPC write that wakes the supervisor):
 * every 10 ms, that was ~10% of a 10,000-connection handoff.
 */
const ACK_INTERVAL_MS = 50;

/** The supervisor's default (supervisor.ts); the supervisor sends the configured one in `tuning`. */
const DEFAULT_WATCHDOG_TIMEOUT = 10_000;

/** What the worker is doing (see the diagram above). */
export type WorkerPhase = 'waiting' | 'starting' | 'adopting' | 'committing' | 'serving' | 'exporting' | 'resuming' | 'leaving';

type Message<T extends ToWorker['t']> = Extract<ToWorker, { t: T }>;

/** One message's handler and the phases that take it. */
interface Handler<M> {
  phases: readonly WorkerPhase[];
  run(msg: M, handle: unknown): void | Promise<void>;
}

/** Messages whose refusal the supervisor must hear about as a nack, or it would wait for an ack that never comes. */
const NACKED: ReadonlySet<ToWorker['t']> = new Set(['export', 'conn', 'link', 'state', 'commit']);

/** How long an export waits for the new worker's hello (what it reads) before it sends links as if it said none. */
const HELLO_WAIT_MS = 1000;

const ALL_PHASES: readonly WorkerPhase[] = ['waiting', 'starting', 'adopting', 'committing', 'serving', 'exporting', 'resuming', 'leaving'];

function wire(err: unknown): WireError {
  return isHotlineError(err) ? err.toJSON() : { code: 'HOTLINE_E_UPGRADE_REFUSED', message: messageOf(err) };
}

/** A socket or handle that arrived with a refused message: closed, or it would stay open here for good. */
function discardHandle(handle: unknown): void {
  const h = handle as { destroy?: () => void; close?: () => void } | undefined;
  if (typeof h?.destroy === 'function') h.destroy();
  else if (typeof h?.close === 'function') h.close();
}

/** The descriptor the supervisor placed high to size this process's descriptor table (worker-process.ts). */
function releaseReservedFd(): void {
  const reserved = Number(process.env[FD_RESERVE_ENV]);
  delete process.env[FD_RESERVE_ENV];
  if (!Number.isInteger(reserved) || reserved <= 4) return;
  try {
    closeSync(reserved);
  } catch {
    // Already closed: nothing to release.
  }
}

export class HostWorker {
  #phase: WorkerPhase = 'waiting';
  readonly #fault = process.env.HOTLINE_FAULT ?? '';
  #config: WorkerConfig | undefined;
  /** Each listener's bound socket from the supervisor and where it said it is bound. */
  #listeners: Array<{ handle: object; bound: BoundAddress | undefined } | undefined> = [];
  #host: Host | undefined;
  /** The page servers (`--static`), with the index of the listener each serves on. */
  #staticServers: Array<{ index: number; server: http.Server }> = [];
  #sessionStore: LeasedSessionStore | undefined;
  #fallbackLog: Logger | undefined;
  /** Old worker: where connections go (the new worker's lane). New worker: where they come from. */
  #lane: HandleLane<LaneMessage> | undefined;
  /** Old worker: what the new worker said it reads (its hello through the lane). */
  #laneCodec: TransferCodec | undefined;
  // The old worker's side of an upgrade.
  #exporter: ConnectionExporter | undefined;
  #exporting: Promise<void> = Promise.resolve();
  // The new worker's side.
  #adopter: ConnectionAdopter | undefined;
  #received = 0;
  #items = 0;
  #ackTimer: NodeJS.Timeout | undefined;
  #stalled = false;
  #heartbeat: NodeJS.Timeout | undefined;

  /**
   * Every message to the supervisor goes through one ordered outbox (handle-pipeline.ts): an export queues thousands
   * of socket handles, and Node's own queue would re-queue its whole backlog at every handle ack.
   */
  readonly #outbox = new HandlePipeline<FromWorker>((msg, handle, written) => {
    if (!process.connected) return written();
    process.send!(msg, handle as never, {}, written);
  });

  readonly #handlers: { [T in ToWorker['t']]: Handler<Message<T>> } = {
    listener: { phases: ['waiting', 'exporting'], run: (m, h) => this.#onListener(m, h) },
    start: { phases: ['waiting'], run: (m) => this.#onStart(m) },
    req: { phases: ['adopting', 'committing', 'serving', 'exporting', 'resuming'], run: (m) => this.#onRequest(m) },
    lane: { phases: ['serving'], run: (_m, h) => this.#onLane(h) },
    export: { phases: ['serving'], run: (m) => this.#onExport(m) },
    conn: { phases: ['adopting'], run: (m, h) => this.#onConn(m, h) },
    link: { phases: ['adopting'], run: (m, h) => this.#onLink(m, h) },
    state: { phases: ['adopting'], run: (m) => this.#onState(m) },
    commit: { phases: ['adopting'], run: () => this.#onCommit() },
    abort: { phases: ['exporting'], run: () => this.#onAbort() },
    release: { phases: ['exporting'], run: () => this.#onRelease() },
    shutdown: { phases: ALL_PHASES, run: () => this.#onShutdown() },
  };

  get phase(): WorkerPhase {
    return this.#phase;
  }

  /** Take the supervisor's messages on this process's IPC channel. */
  run(): void {
    // Its work was done when the process started: the descriptor table keeps its size.
    releaseReservedFd();
    // The supervisor is gone (killed, crashed): nobody can hand these connections on, so leave at once.
    process.on('disconnect', () => process.exit(1));
    process.on('message', (msg: ToWorker, handle: unknown) => this.#dispatch(msg, handle));
  }

  /** Run the message's handler if the current phase takes it; refuse it by name otherwise. */
  #dispatch(msg: ToWorker, handle: unknown): void {
    const handler = (typeof msg === 'object' && msg !== null && Object.hasOwn(this.#handlers, msg.t) ? this.#handlers[msg.t] : undefined) as
      | Handler<ToWorker>
      | undefined;
    if (!handler) return this.#refuse(msg, handle, 'it is not a message of this protocol');
    if (!handler.phases.includes(this.#phase)) return this.#refuse(msg, handle);
    try {
      // Synchronous up to its first await: a connection is taken before the next lane read or message.
      const done = handler.run(msg, handle);
      if (done) done.catch((err: unknown) => this.#failed(msg, err));
    } catch (err) {
      this.#failed(msg, err);
    }
  }

  #refuse(msg: ToWorker, handle: unknown, why = `the worker is ${this.#phase}`): void {
    discardHandle(handle);
    const what = typeof msg === 'object' && msg !== null ? String((msg as { t?: unknown }).t) : typeof msg;
    const err = new HotlineError('HOTLINE_E_WORKER_PHASE', `"${what}"${what === 'req' ? ` (${(msg as Message<'req'>).cmd})` : ''} refused: ${why}`);
    this.#log().error({ code: err.code, phase: this.#phase }, err.message);
    if (what === 'req') this.#send({ t: 'res', id: (msg as Message<'req'>).id, ok: false, error: err.toJSON() });
    else if (NACKED.has(what as ToWorker['t'])) this.#send({ t: 'nack', error: err.toJSON() });
  }

  #failed(msg: ToWorker, err: unknown): void {
    this.#log().error({ err }, `worker failed handling "${msg.t}"`);
  }

  #log(): Logger {
    return this.#host?.log ?? (this.#fallbackLog ??= pino({ level: 'info' }, pino.destination(2)));
  }

  #send(msg: FromWorker, handle?: object): void {
    this.#outbox.push(msg, handle);
  }

  #enter(phase: WorkerPhase): void {
    this.#phase = phase;
  }

  // ── handlers, in protocol order ───────────────────────────────────────────────────────────────────────────────

  #onListener(msg: Message<'listener'>, handle: unknown): void {
    this.#listeners[msg.index] = { handle: handle as object, bound: msg.bound };
  }

  async #onStart(msg: Message<'start'>): Promise<void> {
    this.#enter('starting');
    this.#startHeartbeat(msg.config.tuning?.watchdogTimeout ?? DEFAULT_WATCHDOG_TIMEOUT);
    try {
      await this.#start(msg.config);
    } catch (err) {
      this.#send({ t: 'fatal', error: wire(err) });
      process.exitCode = 1;
      process.disconnect();
    }
  }

  async #onRequest(msg: Message<'req'>): Promise<void> {
    // A reload or rollback while connections move would run in both workers. The host's operation lock is what
    // refuses it (HOTLINE_E_UPGRADE_IN_PROGRESS while the export or the adoption holds it, counted in status.lock), so
    // the answer is the same whichever way the request came: admin socket, SIGHUP, or a watched save.
    const host = this.#host!;
    try {
      const result =
        msg.cmd === 'metrics'
          ? await host.metricFamilies()
          : msg.cmd === 'status'
            ? { ...host.status(), build: process.env.HOTLINE_BUILD ?? null }
            : msg.cmd === 'reload'
              ? await host.reload(msg.trigger ?? 'admin', { ifChanged: msg.force !== true, ...(msg.policy !== undefined && { policy: msg.policy }) })
              : msg.cmd === 'promote'
                ? await host.promote()
                : await host.rollback();
      this.#send({ t: 'res', id: msg.id, ok: true, result });
    } catch (err) {
      this.#send({ t: 'res', id: msg.id, ok: false, error: wire(err) });
    }
  }

  /** The old worker's end of the new worker's handle lane: connections go through it. */
  #onLane(handle: unknown): void {
    try {
      const codec = new TransferCodec();
      const lane = new HandleLane<LaneMessage>(HandleLane.fdOf(handle), handle as object, codec);
      this.#lane = lane;
      this.#laneCodec = codec;
      // A new worker of this build or later says it reads compact connection bodies; an older one says nothing.
      lane.read((m) => {
        if (m.t === 'codec') codec.heard(m);
      });
      // The new worker is gone or refused a descriptor: abort now rather than wait for the ack timeout.
      lane.onError = (err) => this.#send({ t: 'nack', error: { code: 'HOTLINE_E_UPGRADE_REFUSED', message: `handle lane: ${err.message}` } });
    } catch (err) {
      this.#log().warn({ err }, 'no handle lane; connections go through the supervisor');
    }
  }

  #onExport(msg: Message<'export'>): void {
    this.#enter('exporting');
    const exporter = new ConnectionExporter(this.#host!.handoffPort());
    this.#exporter = exporter;
    let laneItems = 0;
    const sink = {
      send: (m: ConnTransfer | LinkTransfer | StateTransfer, h?: object) => {
        if (!this.#lane) return this.#send(m as ConnTransfer | StateTransfer, h);
        this.#lane.send(m, h);
        laneItems++;
      },
      // issue 15: links travel through the lane only, to a new worker that said it reads them.
      takesLinks: () => this.#takesLinks(),
    };
    this.#exporting = exporter.export(sink, msg.settleTimeout).then(
      (counts) => this.#send({ t: 'exported', ...counts, laneItems }),
      (err: unknown) => this.#send({ t: 'nack', error: wire(err) }),
    );
  }

  /** The new worker's hello names what it reads; it comes through the lane soon after the lane itself (bounded wait). */
  async #takesLinks(): Promise<boolean> {
    const codec = this.#laneCodec;
    if (!this.#lane || !codec) return false;
    const until = Date.now() + HELLO_WAIT_MS;
    while (!codec.heardHello && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 5));
    return codec.links && this.#lane !== undefined;
  }

  #onLink(msg: LinkTransfer, handle: unknown): void {
    if (this.#stalled) return;
    try {
      if (this.#fault === 'refuse-link') {
        discardHandle(handle);
        throw new HotlineError('HOTLINE_E_LINK_ADOPT', 'HOTLINE_FAULT=refuse-link: refusing the first link');
      }
      this.#adopter!.adoptLink(msg, handle);
      this.#ack();
    } catch (err) {
      this.#send({ t: 'nack', error: wire(err) });
    }
  }

  #onConn(msg: ConnTransfer, handle: unknown): void {
    if (this.#stalled) return;
    try {
      if (this.#fault === 'refuse-ack') throw new HotlineError('HOTLINE_E_UPGRADE_REFUSED', 'HOTLINE_FAULT=refuse-ack: refusing the first connection');
      this.#adopter!.adopt(msg, handle);
      this.#received++;
      if (this.#fault.startsWith('stall:') && this.#received >= Number(this.#fault.slice(6))) this.#stalled = true;
      this.#ack();
    } catch (err) {
      this.#send({ t: 'nack', error: wire(err) });
    }
  }

  async #onState(msg: StateTransfer): Promise<void> {
    if (this.#stalled) return;
    try {
      await this.#adopter!.importState(msg);
      this.#ack(true);
    } catch (err) {
      this.#send({ t: 'nack', error: wire(err) });
    }
  }

  async #onCommit(): Promise<void> {
    this.#enter('committing');
    this.#closeLane();
    await this.#adopter!.commit();
    this.#adopter = undefined;
    this.#enter('serving');
    this.#send({ t: 'committed' });
  }

  async #onAbort(): Promise<void> {
    this.#enter('resuming');
    // An abort can arrive while the export still runs (the new worker refused an early item): let it finish
    // pausing and queueing, so that every connection it touched is resumed below.
    await this.#exporting;
    // What the outbox has not handed to the channel yet need not travel: the supervisor would only close it.
    this.#outbox.discard((m) => m.t === 'conn' || m.t === 'state' || m.t === 'exported');
    this.#closeLane();
    // The supervisor re-sent the listener handles just before this message: listen on them again.
    for (const [i, t] of this.#host!.handoffPort().transports.entries()) {
      if (t instanceof WsTransport || t instanceof TcpTransport) await t.resumeAccepting(this.#listenerHandle(i, this.#config!.listen[i]!));
    }
    this.#exporter?.resume();
    this.#exporter = undefined;
    this.#enter('serving');
  }

  async #onRelease(): Promise<void> {
    this.#enter('leaving');
    // Session clients cannot move (their socket is behind the session layer): they are closed with a reconnect
    // hint and resume on the new worker from the store, which must keep them rather than end them.
    this.#host?.handoffPort().beginSendAway();
    this.#closeLane();
    this.#exporter?.release();
    await this.#closeAll();
    process.exit(0);
  }

  async #onShutdown(): Promise<void> {
    if (this.#phase === 'leaving') return; // already on its way out: shutdown is idempotent
    this.#enter('leaving');
    await this.#closeAll();
    process.exit(0);
  }

  /**
   * From the start on, before the plugin loads (its init can block too), and in every later phase up to the exit:
   * the supervisor's watchdog (watchdog.ts) kills this process when the beats stop. Unref'd: it never keeps an
   * exiting worker alive. Through the outbox, in order with everything else this worker says.
   */
  #startHeartbeat(watchdogTimeout: number): void {
    if (!(watchdogTimeout > 0) || this.#heartbeat) return;
    this.#heartbeat = setInterval(() => this.#send({ t: 'beat' }), heartbeatInterval(watchdogTimeout));
    this.#heartbeat.unref();
    this.#send({ t: 'beat' });
  }

  // ── the work behind the handlers ──────────────────────────────────────────────────────────────────────────────

  /** A listener's handle, checked before any listen() on it: never serve anywhere but where the supervisor bound it. */
  #listenerHandle(i: number, spec: ListenerSpec): object {
    const l = this.#listeners[i];
    const why = checkListenerHandle(l?.handle, l?.bound);
    if (why !== undefined) throw new HotlineError('HOTLINE_E_LISTEN', `cannot listen on ${spec.host}:${spec.port}: ${why}`);
    return l!.handle;
  }

  async #start(config: WorkerConfig): Promise<void> {
    this.#config = config;
    const logger = config.dev ? pino({ level: 'info' }, prettyDestination()) : pino({ level: 'info' }, pino.destination(2));
    const listenOpts: ListenOptions[] = [];
    for (const [i, spec] of config.listen.entries()) {
      const handle = this.#listenerHandle(i, spec);
      if (spec.static) {
        const server = createStaticServer(spec.static, spec.tls);
        this.#staticServers.push({ index: i, server });
        if (!config.upgrade) await listen(server, spec.port, spec.host, handle);
        listenOpts.push({ transport: 'ws', server });
      } else if (spec.transport === 'ws') {
        listenOpts.push({ transport: 'ws', host: spec.host, port: spec.port, handle, tls: spec.tls });
      } else {
        listenOpts.push({ transport: 'tcp', host: spec.host, port: spec.port, framing: spec.framing, handle, tls: spec.tls });
      }
    }
    // The supervisor's last known good build (a restart after a new build died): checked before anything else runs.
    const initialBuild = config.build === undefined ? undefined : checkBuild(config.build, path.resolve(config.entry));
    // A worker started for an upgrade opens the store only once the old worker has let go of it (session-lease.ts).
    if (config.sessions) this.#sessionStore = new LeasedSessionStore(config.sessions);
    const host = await createHost({
      plugin: config.entry,
      listen: listenOpts,
      logger,
      deferListen: config.upgrade,
      initialBuild,
      afterWorkerDeath: config.afterDeath === true,
      ...tunedHostOptions(config.tuning, config.watch, this.#sessionStore, config.state, config.cluster),
      metrics: config.metrics === true,
    });
    this.#host = host;
    // Every build this worker serves from now on is reported, so the supervisor knows what a restart can go back to.
    host.on('swap', () => this.#reportBuild());
    if (config.metrics) forwardOpsEvents(host, (event) => this.#send({ t: 'ops-event', event }));
    if (config.upgrade) this.#prepareAdoption(host, config);
    // In its next phase before it says ready: the supervisor's next messages are for that phase.
    this.#enter(config.upgrade ? 'adopting' : 'serving');
    if (this.#fault === 'ready-timeout') return;
    // Not status(): a worker started for an upgrade has no listening address yet.
    const v = host.handoffPort().current()!;
    this.#send({ t: 'ready', plugin: { name: v.name, version: v.version } });
    this.#reportBuild();
  }

  /** Tell the supervisor which build serves now (last-known-good.ts). A plain copy: the Bundle's fields only. */
  #reportBuild(): void {
    const b = this.#host?.handoffPort().current()?.bundle;
    if (b) this.#send({ t: 'serving', build: { hash: b.hash, code: b.code, map: b.map, entry: b.entry, inputs: [...b.inputs] } });
  }

  /** A worker started for an upgrade: an adopter, and the new end of the handle lane. */
  #prepareAdoption(host: Host, config: WorkerConfig): void {
    const port = host.handoffPort();
    const startListening = port.startListening;
    // The page server belongs to this file, not to the host: it listens at commit with the host's listeners.
    port.startListening = async () => {
      await startListening();
      for (const { index, server } of this.#staticServers) await listen(server, 0, config.listen[index]!.host, this.#listenerHandle(index, config.listen[index]!));
    };
    this.#adopter = new ConnectionAdopter(port);
    if (!config.lane) return;
    const lane = new HandleLane<LaneMessage>(LANE_FD, undefined, new TransferCodec());
    this.#lane = lane;
    // Through the same phase check as the supervisor's messages; a connection is taken synchronously, since one
    // lane read carries one of them.
    lane.read((m, handle) => {
      if (m.t === 'conn' || m.t === 'link' || m.t === 'state') this.#dispatch(m, handle);
    });
    // A malformed frame (HOTLINE_E_HANDOFF_FRAME) aborts the upgrade instead of escaping the read callback.
    lane.onError = (err) => this.#send({ t: 'nack', error: wire(err) });
    // Tell the old worker this build reads compact connection bodies with ids (transfer-codec.ts).
    lane.send(LANE_HELLO);
  }

  // Acks carry running counts, so they are coalesced: at most one per ACK_INTERVAL_MS while items arrive, and one at
  // once after the global state, the last item of an export. Not one per event-loop turn: the lane delivers one
  // connection per read (a read stops at a buffer that carried a descriptor), so that was one ack per connection,
  // each an IPC write here and a message event in the supervisor, on the same two cores as the handoff itself.
  #ack(last = false): void {
    this.#items++;
    if (last) return this.#flushAck();
    this.#ackTimer ??= setTimeout(() => this.#flushAck(), ACK_INTERVAL_MS);
  }

  #flushAck(): void {
    clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
    this.#send({ t: 'ack', n: this.#received, items: this.#items });
  }

  #closeLane(): void {
    this.#lane?.close();
    this.#lane = undefined;
    this.#laneCodec = undefined;
  }

  async #closeAll(): Promise<void> {
    clearTimeout(this.#ackTimer);
    await this.#host?.close();
    this.#sessionStore?.close();
    for (const s of this.#staticServers) s.server.close();
    this.#staticServers = [];
  }
}

/** Run the worker side of the protocol on this process's IPC channel. */
export function runWorker(): void {
  new HostWorker().run();
}
