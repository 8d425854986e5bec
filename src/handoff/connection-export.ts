/**
 * The old worker's side of an upgrade: suspend dispatch, stop listening, and turn every live connection into a
 * transfer (socket handle, unconsumed bytes, queued messages, plugin state), then the global state. Until the
 * supervisor says `release`, this worker keeps its own copy of every socket it sent (a handle sent with
 * `child.send` is duplicated, not moved), paused: if the upgrade aborts, it resumes them and nothing was lost.
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import v8 from 'node:v8';
import { CLOSE_SERVICE_RESTART } from '../connection/close-codes.js';
import type { Connection } from '../connection/connection.js';
import type { SuspendHold } from '../connection/dispatcher.js';
import { HotlineError } from '../errors.js';
import type { HostHandoffPort } from '../host/host.js';
import type { HandoffSource } from '../connection/link.js';
import { rawHandle, startReading, stopReading } from '../internals/node-internals.js';
import { socketOf } from '../internals/ws-internals.js';
import type { OperationHold } from '../lock/operation-lock.js';
import { linksOf } from '../links/link-table.js';
import { LinkExporter } from './link-export.js';
import type { ConnTransfer, LinkTransfer, StateTransfer } from './protocol.js';
import { captureWs } from './ws-frames.js';
import { WsTransport } from '../transport/ws-transport.js';

/** How many capture rounds a connection gets (writes to flush, buffered bytes to parse) before it is sent away. */
const MAX_ROUNDS = 100;
/** Connections captured between two turns of the event loop during an export. */
const YIELD_EVERY = 64;
/** How long handshakes already under way may take to finish so they can move too; those that stall are sent away. */
const HANDSHAKE_BOUND_MS = 1000;

type Capture = { transfer: ConnTransfer; handle: object } | { retry: string } | { never: string };

export interface ExportSink {
  /** Send one transfer, with the socket handle for a connection (and a link that moves with its socket). */
  send(msg: ConnTransfer | LinkTransfer | StateTransfer, handle?: object): void;
  /**
   * issue 15: whether the new worker takes links (it said so through the handle lane). Absent or false: the links stay
   * here and close at release; the new worker's plugin opens them again.
   */
  takesLinks?(): Promise<boolean>;
}

/** One moved connection, kept paused until release or abort. */
interface Moved {
  conn: Connection;
  source: HandoffSource;
}

export class ConnectionExporter {
  #port: HostHandoffPort;
  #moved: Moved[] = [];
  #sentAway: Connection[] = [];
  /** Sockets whose WebSocket handshake stalled past the bound: sent away with a 503 at release. */
  #stalled: Array<{ transport: WsTransport; socket: Duplex }> = [];
  #stateBytes = 0;
  /** The host's operation lock, held from export() to release() or resume(): no swap runs while connections move. */
  #hold: OperationHold | undefined;
  #suspension: SuspendHold | undefined;
  /** issue 15: the links sent, once the new worker said it takes them. */
  #links: LinkExporter | undefined;

  constructor(port: HostHandoffPort) {
    this.#port = port;
  }

  get moved(): number {
    return this.#moved.length;
  }

  /**
   * Export every connection and the global state. Resolves with counts once everything is queued on the channel.
   * `settleTimeout` bounds the whole wait before anything moves: for a running swap to finish, then for in-flight
   * handlers to settle. Before, the swap wait was a fixed 10 s whose timeout was ignored (the export went on beside
   * the swap) and came on top of settleTimeout, so the supervisor's ack timeout fired first.
   */
  async export(
    sink: ExportSink,
    settleTimeout: number,
  ): Promise<{ moved: number; sentAway: number; stateBytes: number; links?: { moved: number; reconnecting: number } }> {
    const port = this.#port;
    const d = port.dispatcher;
    const deadline = Date.now() + settleTimeout;
    this.#hold = await port.lock.acquire('export', settleTimeout);
    // issue 12: the new process adopts one version with one global state. Carrying pinned versions or a canary would
    // mean building their old sources there (the disk holds the newest only) and splitting the connections among them.
    const live = port.liveVersions?.() ?? [];
    if (live.length > 1) {
      this.#hold.release();
      this.#hold = undefined;
      throw new HotlineError('HOTLINE_E_UPGRADE_VERSIONS', `${live.length} versions are live (${live.join(', ')}): wait for the pinned ones to retire, or \`hotline promote\`, then upgrade`);
    }
    this.#suspension = d.suspend('export');
    if (!(await d.whenIdle(Math.max(0, deadline - Date.now())))) {
      const inflight = d.inflight;
      this.#letGo();
      throw new HotlineError('HOTLINE_E_SWAP_TIMEOUT', `${inflight} in-flight handler(s) did not settle within settleTimeout (${settleTimeout} ms); the upgrade was not started`);
    }
    // The global state as it is now, taken while dispatch is held: inline that is the live object; a worker-mode
    // version clones it out of its thread (refreshing the host's copy of each conn.state on the way), instead of
    // handing over its last checkpoint, up to a second old. A state that cannot be cloned fails the upgrade here.
    const v = port.current();
    let exported: Awaited<ReturnType<NonNullable<typeof v>['exportState']>> | undefined;
    try {
      exported = v && (await v.exportState());
    } catch (err) {
      this.#letGo();
      throw err;
    }
    for (const t of port.transports) (t as { pauseAccepting?(): void }).pauseAccepting?.();
    const seen = new Set<Connection>();
    let requeued = 0;
    const count = (transfer: ConnTransfer) => void (requeued += transfer.messages.length);
    await this.#exportRound(sink, seen, count);
    // Handshakes under way when the listener closed become connections in a moment: wait for them, bounded.
    const ws = port.transports.filter((t): t is WsTransport => t instanceof WsTransport);
    await waitFor(() => ws.every((t) => t.pendingHandshakes === 0), HANDSHAKE_BOUND_MS);
    await this.#exportRound(sink, seen, count);
    // A client that sent half an upgrade request and went quiet must not hold the upgrade: it is sent away.
    for (const t of ws) for (const socket of t.stalledHandshakes()) this.#stalled.push({ transport: t, socket });
    // issue 15: the links, after the connections and before the global state (whose import runs migrateLink).
    let links: { moved: number; reconnecting: number } | undefined;
    const table = linksOf(d);
    if (table.size > 0 && (await sink.takesLinks?.())) {
      this.#links = new LinkExporter(table);
      links = await this.#links.export((m, h) => sink.send(m, h));
    }
    if (v && exported) {
      // Serialised here for the same reason as a connection's state (trySend): a failure must surface now.
      this.#stateBytes += v8.serialize(exported.state).byteLength;
      const totals = { in: d.messagesIn - requeued, out: d.messagesOut, dropped: d.messagesDropped };
      sink.send({ t: 'state', plugin: v.name, version: v.version, state: exported.state, totals });
    }
    return { moved: this.#moved.length, sentAway: this.#sentAway.length + this.#stalled.length, stateBytes: this.#stateBytes, ...(links && { links }) };
  }

  /** The upgrade committed: forget the moved connections without closing them (the new worker owns them now). */
  release(): void {
    // The suspension stays: what is left here only closes. The lock goes, so the shutdown that follows can take it.
    this.#hold?.release();
    this.#hold = undefined;
    for (const { conn, source } of this.#moved) {
      conn.detach();
      const socket = source.kind === 'ws' ? socketOf(source.ws)! : source.socket;
      // Our copy of the descriptor only: destroy() closes it without a FIN, because the new worker holds another.
      socket.removeAllListeners();
      socket.on('error', () => undefined);
      socket.destroy();
    }
    this.#moved = [];
    this.#links?.release();
    this.#links = undefined;
    // What could not move is told to come back: a WebSocket gets 1012, a TCP stream an end (DESIGN.md §7).
    for (const conn of this.#sentAway) conn.close(CLOSE_SERVICE_RESTART, 'service restart: reconnect');
    this.#sentAway = [];
    // A stalled handshake that completed meanwhile is a connection of this worker now: its shutdown closes it (1012).
    for (const { transport, socket } of this.#stalled) transport.sendAwayHandshake(socket);
    this.#stalled = [];
  }

  /** The upgrade aborted: read from every paused socket again and dispatch what was queued meanwhile. */
  resume(): void {
    for (const { source } of this.#moved) resumeSource(source);
    this.#moved = [];
    this.#links?.resume();
    this.#links = undefined;
    this.#sentAway = [];
    this.#stalled = [];
    this.#letGo();
  }

  /** Dispatch again and free the lock. Idempotent: an abort after a failed export releases nothing twice. */
  #letGo(): void {
    this.#suspension?.release();
    this.#suspension = undefined;
    this.#hold?.release();
    this.#hold = undefined;
  }

  async #exportRound(sink: ExportSink, seen: Set<Connection>, moved: (transfer: ConnTransfer) => void): Promise<void> {
    let pending = [...this.#port.dispatcher.connections.values()].filter((c) => !seen.has(c));
    for (const c of pending) seen.add(c);
    for (let round = 0; pending.length > 0; round++) {
      const retry: Connection[] = [];
      for (const [i, conn] of pending.entries()) {
        // Let the event loop run now and then: the lane writes only from it, and the new worker, which adopts while
        // this loop still captures, would otherwise wait for the whole export (~0.2 s for 10,000) after the first
        // few hundred connections the socket buffer holds.
        if (i > 0 && i % YIELD_EVERY === 0) await new Promise((resolve) => setImmediate(resolve));
        const r = round < MAX_ROUNDS ? capture(conn) : { never: 'not quiescent in time' };
        const sent = 'transfer' in r && trySend(sink, r.transfer, r.handle);
        if (sent !== false) {
          this.#stateBytes += sent;
          moved(r.transfer);
          this.#moved.push({ conn, source: conn.link.handoff!() });
        } else if ('retry' in r) {
          retry.push(conn);
        } else {
          resumeSource(conn.link.handoff?.());
          this.#sentAway.push(conn);
        }
      }
      pending = retry;
      if (pending.length > 0) await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}

function capture(conn: Connection): Capture {
  const source = conn.link.handoff?.();
  if (!source || !conn.isOpen) return { never: 'not movable' };
  // TLS state lives in this process's OpenSSL: the descriptor alone is useless elsewhere (nodejs/node#4037). Checked
  // first, so a TLS connection is neither paused nor retried: it is sent away at once.
  const raw = rawSocket(source);
  if (raw instanceof tls.TLSSocket || !(raw instanceof net.Socket)) return { never: 'TLS' };
  const events = conn.pendingEvents();
  if (!events) return { never: 'closing' };
  let socket: net.Socket;
  let head: Buffer;
  let protocol = '';
  if (source.kind === 'ws') {
    source.ws.pause();
    stopReading(raw);
    const c = captureWs(source.ws);
    if (!('socket' in c)) return settle(c, () => resumeSource(source));
    ({ socket, head, protocol } = c);
  } else {
    socket = raw;
    socket.pause();
    stopReading(socket);
    if (socket.readableLength > 0) return settle({ retry: 'socket buffer' }, () => resumeSource(source));
    if (socket.writableLength > 0) return { retry: 'writes pending' };
    head = source.unconsumed();
  }
  const handle = rawHandle(socket);
  if (!handle) return { never: 'no handle' };
  return {
    handle,
    transfer: {
      t: 'conn',
      id: conn.id,
      kind: source.kind,
      framing: source.kind === 'tcp' ? source.framing : undefined,
      remoteAddress: conn.remoteAddress,
      protocol,
      head,
      opened: !events.open,
      state: conn.state,
      messages: events.messages,
      ...roomsOf(conn),
    },
  };
}

/**
 * False when the transfer cannot be serialised (a conn.state holding a function, say): the connection is sent away. The
 * state is serialised here, once, because the channel serialises a queued message only when it writes it, long
 * after this connection would have been counted as moved. Returns the state's size in bytes otherwise.
 */
function trySend(sink: ExportSink, msg: ConnTransfer, handle: object): number | false {
  let bytes = 0;
  try {
    if (typeof msg.state === 'object' && msg.state !== null) bytes = v8.serialize(msg.state).byteLength;
    sink.send(msg, handle);
    return bytes;
  } catch {
    return false;
  }
}

/** The connection's rooms for its transfer: host-owned membership moves with the socket (issue 13). */
function roomsOf(conn: Connection): { rooms?: string[] } {
  const rooms = conn.rooms();
  return rooms.length > 0 ? { rooms } : {};
}

function resumeSource(source: HandoffSource | undefined): void {
  if (!source) return;
  if (source.kind === 'ws') source.ws.resume();
  else source.socket.resume();
  startReading(rawSocket(source));
}

/** The socket under a source: a TCP connection's own, or the one `ws` reads a WebSocket from. */
function rawSocket(source: HandoffSource): net.Socket {
  return source.kind === 'ws' ? socketOf(source.ws)! : source.socket;
}

/** A retry that needs the socket flowing to clear (buffered bytes) resumes it until the next round. */
function settle(r: { retry: string } | { never: string }, resume: () => void): Capture {
  if ('retry' in r && r.retry !== 'writes pending') resume();
  return r;
}

async function waitFor(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) return false;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return true;
}
