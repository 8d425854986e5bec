/**
 * A worker process run by the supervisor: one host on the listeners the supervisor owns, plus both sides of an
 * upgrade (export when it is the old worker, adopt when it is the new one). It exits when the supervisor goes away,
 * so a `kill -9` of the supervisor never leaves an orphan holding the ports.
 *
 * `HOTLINE_FAULT` (read once at start) injects upgrade failures for tests: `ready-timeout` never reports ready,
 * `refuse-ack` refuses the first connection handed to it, `stall:N` stops acknowledging after N connections.
 */
import { closeSync } from 'node:fs';
import http from 'node:http';
import pino from 'pino';
import { HotlineError, isHotlineError, messageOf } from '../errors.js';
import { createHost, type Host } from '../host/host.js';
import type { ListenOptions } from '../transport/transport.js';
import { WsTransport } from '../transport/ws-transport.js';
import { TcpTransport } from '../transport/tcp-transport.js';
import { listen } from '../transport/listen.js';
import { prettyDestination } from '../cli/pretty-log.js';
import { createStaticServer } from '../cli/static-server.js';
import { ConnectionAdopter } from './connection-adopt.js';
import { ConnectionExporter } from './connection-export.js';
import { HandleLane, LANE_FD } from './handle-lane.js';
import { HandlePipeline } from './handle-pipeline.js';
import { checkListenerHandle } from './listeners.js';
import type { ConnTransfer, FromWorker, ListenerSpec, StateTransfer, ToWorker, WireError, WorkerConfig } from './protocol.js';
import { LeasedSessionStore } from './session-lease.js';
import { type LaneMessage, TransferCodec } from './transfer-codec.js';
import { FD_RESERVE_ENV } from './worker-process.js';

const fault = process.env.HOTLINE_FAULT ?? '';

/**
 * How long an acknowledgement may wait to be coalesced with later ones (the supervisor's ack timeout is 10 s). Each
 * one stalled the new worker's adoption ~1 ms on the 2-core test machine (an IPC write that wakes the supervisor):
 * every 10 ms, that was ~10% of a 10,000-connection handoff.
 */
const ACK_INTERVAL_MS = 50;

/**
 * Every message to the supervisor goes through one ordered outbox (handle-pipeline.ts): an export queues thousands
 * of socket handles, and Node's own queue would re-queue its whole backlog at every handle ack.
 */
const outbox = new HandlePipeline<FromWorker>((msg, handle, written) => {
  if (!process.connected) return written();
  process.send!(msg, handle as never, {}, written);
});

function send(msg: FromWorker, handle?: object): void {
  outbox.push(msg, handle);
}

function wire(err: unknown): WireError {
  return isHotlineError(err) ? err.toJSON() : { code: 'HOTLINE_E_UPGRADE_REFUSED', message: messageOf(err) };
}

/** Run the worker side of the protocol on this process's IPC channel. */
export function runWorker(): void {
  // The descriptor the supervisor placed high to size this process's descriptor table (worker-process.ts): its
  // work is done once the process exists, and the table keeps its size.
  const reserved = Number(process.env[FD_RESERVE_ENV]);
  delete process.env[FD_RESERVE_ENV];
  if (Number.isInteger(reserved) && reserved > 4) {
    try {
      closeSync(reserved);
    } catch {
      // Already closed: nothing to release.
    }
  }
  const handles: object[] = [];
  const bounds: Array<{ host: string; port: number } | undefined> = [];
  // A listener's handle, checked before any listen() on it: never serve anywhere but where the supervisor bound it.
  const handleFor = (i: number, spec: ListenerSpec): object => {
    const why = checkListenerHandle(handles[i], bounds[i]);
    if (why !== undefined) throw new HotlineError('HOTLINE_E_LISTEN', `cannot listen on ${spec.host}:${spec.port}: ${why}`);
    return handles[i]!;
  };
  let host: Host | undefined;
  let staticServers: http.Server[] = [];
  let exporter: ConnectionExporter | undefined;
  let adopter: ConnectionAdopter | undefined;
  let received = 0;
  let items = 0;
  let ackTimer: NodeJS.Timeout | undefined;
  let exporting: Promise<void> = Promise.resolve();
  let stalled = false;
  /** Old worker: where connections go (the new worker's lane). New worker: where they come from. */
  let lane: HandleLane<LaneMessage> | undefined;
  let sessionStore: LeasedSessionStore | undefined;

  // Acks carry running counts, so they are coalesced: at most one per ACK_INTERVAL_MS while items arrive, and one at
  // once after the global state, the last item of an export. Not one per event-loop turn: the lane delivers one
  // connection per read (a read stops at a buffer that carried a descriptor), so that was one ack per connection,
  // each an IPC write here and a message event in the supervisor, on the same two cores as the handoff itself.
  const flushAck = () => {
    clearTimeout(ackTimer);
    ackTimer = undefined;
    send({ t: 'ack', n: received, items });
  };
  const ack = (last = false) => {
    items++;
    if (last) return flushAck();
    ackTimer ??= setTimeout(flushAck, ACK_INTERVAL_MS);
  };

  // The supervisor is gone (killed, crashed): nobody can hand these connections on, so leave at once.
  process.on('disconnect', () => process.exit(1));

  let workerConfig: WorkerConfig | undefined;
  const start = async (config: WorkerConfig) => {
    workerConfig = config;
    const logger = config.dev ? pino({ level: 'info' }, prettyDestination()) : pino({ level: 'info' }, pino.destination(2));
    const listenOpts: ListenOptions[] = [];
    for (const [i, spec] of config.listen.entries()) {
      const handle = handleFor(i, spec);
      if (spec.static) {
        const server = createStaticServer(spec.static, spec.tls);
        staticServers.push(server);
        if (!config.upgrade) await listen(server, spec.port, spec.host, handle);
        listenOpts.push({ transport: 'ws', server });
      } else if (spec.transport === 'ws') {
        listenOpts.push({ transport: 'ws', host: spec.host, port: spec.port, handle, tls: spec.tls });
      } else {
        listenOpts.push({ transport: 'tcp', host: spec.host, port: spec.port, framing: spec.framing, handle, tls: spec.tls });
      }
    }
    // A worker started for an upgrade opens the store only once the old worker has let go of it (session-lease.ts).
    if (config.sessions) sessionStore = new LeasedSessionStore(config.sessions);
    const h = await createHost({
      plugin: config.entry,
      listen: listenOpts,
      watch: config.watch,
      logger,
      deferListen: config.upgrade,
      ...(sessionStore && { sessions: { store: sessionStore } }),
    });
    host = h;
    if (config.upgrade) {
      const port = h.handoffPort();
      const startListening = port.startListening;
      // The page server belongs to this file, not to the host: it listens at commit with the host's listeners.
      port.startListening = async () => {
        await startListening();
        for (const [i, s] of staticServers.entries()) await listen(s, 0, config.listen[i]!.host, handles[i]);
      };
      adopter = new ConnectionAdopter(port);
      if (config.lane) {
        lane = new HandleLane<LaneMessage>(LANE_FD, undefined, new TransferCodec());
        // Connections are taken synchronously, not through the async dispatch: one lane read carries one of them.
        lane.read((m, handle) => {
          if (m.t === 'conn') takeConn(m, handle);
          else if (m.t === 'state') void dispatch(m, handle);
        });
        // Tell the old worker this build reads compact connection bodies (transfer-codec.ts).
        lane.send({ t: 'codec', compact: 1 });
      }
    }
    if (fault === 'ready-timeout') return;
    // Not status(): a worker started for an upgrade has no listening address yet.
    const def = h.handoffPort().current()!.def;
    send({ t: 'ready', plugin: { name: def.name, version: def.version } });
  };

  const takeConn = (msg: ConnTransfer, handle: unknown) => {
    if (stalled) return;
    try {
      if (fault === 'refuse-ack') throw new HotlineError('HOTLINE_E_UPGRADE_REFUSED', 'HOTLINE_FAULT=refuse-ack: refusing the first connection');
      adopter!.adopt(msg, handle);
      received++;
      if (fault.startsWith('stall:') && received >= Number(fault.slice(6))) stalled = true;
      ack();
    } catch (err) {
      send({ t: 'nack', error: wire(err) });
    }
  };

  const onMessage = async (msg: ToWorker, handle: unknown) => {
    switch (msg.t) {
      case 'listener':
        handles[msg.index] = handle as object;
        bounds[msg.index] = msg.bound;
        return;
      case 'start':
        try {
          await start(msg.config);
        } catch (err) {
          send({ t: 'fatal', error: wire(err) });
          process.exitCode = 1;
          process.disconnect();
        }
        return;
      case 'req': {
        if (!host) return send({ t: 'res', id: msg.id, ok: false, error: { code: 'HOTLINE_E_ADMIN', message: 'the worker is starting' } });
        try {
          const result =
            msg.cmd === 'status' ? { ...host.status(), build: process.env.HOTLINE_BUILD ?? null } : msg.cmd === 'reload' ? await host.reload(msg.trigger ?? 'admin') : await host.rollback();
          send({ t: 'res', id: msg.id, ok: true, result });
        } catch (err) {
          send({ t: 'res', id: msg.id, ok: false, error: wire(err) });
        }
        return;
      }
      case 'lane':
        try {
          const codec = new TransferCodec();
          lane = new HandleLane<LaneMessage>(HandleLane.fdOf(handle), handle as object, codec);
          // A new worker of this build or later says it reads compact connection bodies; an older one says nothing.
          lane.read((m) => {
            if (m.t === 'codec') codec.compact = true;
          });
          // The new worker is gone or refused a descriptor: abort now rather than wait for the ack timeout.
          lane.onError = (err) => send({ t: 'nack', error: { code: 'HOTLINE_E_UPGRADE_REFUSED', message: `handle lane: ${err.message}` } });
        } catch (err) {
          host?.log.warn({ err }, 'no handle lane; connections go through the supervisor');
        }
        return;
      case 'export': {
        exporter = new ConnectionExporter(host!.handoffPort());
        let laneItems = 0;
        const sink = {
          send: (m: ConnTransfer | StateTransfer, h?: object) => {
            if (!lane) return send(m, h);
            lane.send(m, h);
            laneItems++;
          },
        };
        exporting = exporter.export(sink, msg.drainTimeout).then(
          (counts) => send({ t: 'exported', ...counts, laneItems }),
          (err: unknown) => send({ t: 'nack', error: wire(err) }),
        );
        return;
      }
      case 'conn':
        return takeConn(msg, handle);
      case 'state':
        if (stalled) return;
        try {
          await adopter!.importState(msg);
          ack(true);
        } catch (err) {
          send({ t: 'nack', error: wire(err) });
        }
        return;
      case 'commit':
        lane?.close();
        lane = undefined;
        await adopter!.commit();
        adopter = undefined;
        send({ t: 'committed' });
        return;
      case 'abort': {
        // An abort can arrive while the export still runs (the new worker refused an early item): let it finish
        // pausing and queueing, so that every connection it touched is resumed below.
        await exporting;
        // What the outbox has not handed to the channel yet need not travel: the supervisor would only close it.
        outbox.discard((m) => m.t === 'conn' || m.t === 'state' || m.t === 'exported');
        lane?.close();
        lane = undefined;
        // The supervisor re-sent the listener handles just before this message: listen on them again.
        const port = host!.handoffPort();
        for (const [i, t] of port.transports.entries()) {
          if (t instanceof WsTransport || t instanceof TcpTransport) await t.resumeAccepting(handleFor(i, workerConfig!.listen[i]!));
        }
        exporter?.resume();
        exporter = undefined;
        return;
      }
      case 'release':
        // Session clients cannot move (their socket is behind the session layer): they are closed with a reconnect
        // hint and resume on the new worker from the store, which must keep them rather than end them.
        host?.handoffPort().drainSessions();
        lane?.close();
        lane = undefined;
        exporter?.release();
        await host?.close();
        sessionStore?.close();
        for (const s of staticServers) s.close();
        staticServers = [];
        process.exit(0);
        return;
      case 'shutdown':
        await host?.close();
        sessionStore?.close();
        for (const s of staticServers) s.close();
        process.exit(0);
    }
  };

  const dispatch = (msg: ToWorker, handle: unknown) =>
    onMessage(msg, handle).catch((err: unknown) => {
      host?.log.error({ err }, `worker failed handling "${msg.t}"`);
    });
  process.on('message', dispatch);
}
