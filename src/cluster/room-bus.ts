/**
 * The cluster bus: room messages between nodes over core NATS pub/sub (DESIGN.md §9). `ctx.to(room).send(data)` on
 * one node is delivered to that node's members at once (src/rooms/room-registry.ts) and published here once, on the
 * room's subject; every node with members in the room is subscribed to it and delivers it to its own members.
 *
 * - **Subscriptions follow membership**: the registry tells the bus when a room gets its first member on this node
 *   (subscribe) and loses its last (unsubscribe), so a node receives only the rooms it has members in.
 * - **Order**: FIFO per origin node. One node publishes on one NATS connection, and NATS keeps one publisher's order
 *   on one subject. Nothing orders two origins against each other.
 * - **Counted by sequence number**: each envelope carries its origin (node name and process epoch), a stream id and a
 *   sequence number per (origin, room). A receiver keeps the last one per origin in each room it is subscribed to, so
 *   a gap (messages lost: core NATS is at-most-once) and a duplicate are counted, and a duplicate or a late message is
 *   never delivered. A restarted node is a new origin (new epoch): its seq 1 is not a duplicate.
 * - **NATS unreachable**: the NATS client drops whatever is published while it is disconnected, without an error
 *   (DESIGN.md §9), so the bus never publishes while the link is degraded. It buffers instead, in order and bounded
 *   (`whileDown: 'buffer'`, `maxBuffered` messages and `maxBufferedBytes`), and publishes the buffer when the link is
 *   up again; or it drops (`whileDown: 'drop'`). Either way every message not published is counted
 *   (HOTLINE_E_CLUSTER_DROPPED), and its sequence number is spent, so the receivers count it as missed too. Local
 *   delivery does not depend on NATS at all.
 * - **Inbound is hostile**: anything with access to the NATS account can publish on these subjects. Every message is
 *   decoded by room-envelope.ts, bounded by the host's `maxPayload`; a refusal is counted by reason and logged
 *   (HOTLINE_E_CLUSTER_MESSAGE, rate-limited), never thrown.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import type { Msg, Subscription } from '@nats-io/transport-node';
import { type ErrorCode, HotlineError, messageOf } from '../errors.js';
import type { MessageData } from '../plugin/contract.js';
import { PreparedMessage } from '../rooms/prepared-message.js';
import type { RoomRelay } from '../rooms/room-registry.js';
import type { NatsLink, NatsLinkOptions, NatsLinkState } from './nats-connection.js';
import { isConnectionId } from '../connection/conn-id.js';
import { CLUSTER_NAME_PATTERN, type Envelope, decodeEnvelope, directSubject, encodeEnvelope, isOrigin, isProblem, originOf, roomSubject } from './room-envelope.js';

/** `cluster` in createHost: the NATS servers, and how room messages cross nodes. */
export interface ClusterOptions extends Partial<Pick<NatsLinkOptions, 'atStart' | 'waitTimeout' | 'connectTimeout'>> {
  /** NATS server URLs, e.g. `nats://127.0.0.1:4222`. */
  servers: string | string[];
  /** The cluster's name: nodes of one name share rooms; subjects start `hl.<name>.`. Default `default`. */
  name?: string;
  /** This node's name (status, the origin of its messages). Default `<hostname>-<pid>`. */
  node?: string;
  /**
   * Room messages sent while NATS is unreachable: `'buffer'` (default) keeps them, in order, up to `maxBuffered`
   * and `maxBufferedBytes`, and publishes them when NATS is back; `'drop'` drops them. Counted either way.
   */
  whileDown?: 'buffer' | 'drop';
  /** Messages the buffer holds at most; past it a message is dropped and counted. Default 10 000. */
  maxBuffered?: number;
  /** Bytes (envelopes) the buffer holds at most. Default 16 MiB. */
  maxBufferedBytes?: number;
  /**
   * With `whileDown: 'buffer'`: after NATS comes back, keep buffering this many ms before publishing the buffer, so
   * the other nodes, reconnecting on their own schedule (every 250 ms), have subscribed again. Default 500.
   */
  resumeDelay?: number;
}

/** The bus's settings, resolved and checked (options.ts). */
export interface RoomBusSettings {
  name: string;
  node: string;
  whileDown: 'buffer' | 'drop';
  maxBuffered: number;
  maxBufferedBytes: number;
  resumeDelay: number;
  /** The largest payload taken from another node: the host's own limits.maxPayload. */
  maxPayload: number;
}

/** What the bus does to this node: deliver to its members, and log. */
export interface RoomBusDeps {
  deliverHere(room: string, msg: PreparedMessage): number;
  /** A direct message from another node: true when the connection is open here and took it. */
  deliverTo(id: string, data: MessageData): boolean;
  log(level: 'info' | 'warn', msg: string, fields: Record<string, unknown>): void;
}

/** Counts kept per origin that sent here, for status (at most MAX_ORIGIN_STATS origins). */
export interface OriginCounts {
  origin: string;
  received: number;
  missed: number;
  duplicates: number;
}

/** `status().cluster`: the bus, its link, and every count a lost or refused message is in. */
export interface RoomBusStatus {
  state: NatsLinkState;
  name: string;
  node: string;
  origin: string;
  servers: string[];
  whileDown: 'buffer' | 'drop';
  /** Times the link went down since start. */
  disconnects: number;
  /** Rooms this node is subscribed to (those with members here). */
  subscriptions: number;
  /**
   * Of those, the ones the server has not confirmed yet (a flush after the SUB is in flight): until it is, messages
   * other nodes publish to the room may not reach this node.
   */
  unconfirmedSubscriptions: number;
  /** Messages handed to NATS (buffered ones included once published). */
  published: number;
  /** Messages in the buffer now, and their bytes. */
  buffered: number;
  bufferedBytes: number;
  /** Messages that went through the buffer since start. */
  bufferedTotal: number;
  /** Messages not published: dropped while NATS was unreachable, the buffer full, or at close (HOTLINE_E_CLUSTER_DROPPED). */
  dropped: number;
  /** Messages the NATS client refused (over the server's max_payload) (HOTLINE_E_CLUSTER_PUBLISH). */
  refusedPublishes: number;
  /** Messages from other nodes accepted, and the local deliveries they made. */
  received: number;
  delivered: number;
  /** Holes in an origin's sequence seen here, and the messages in them (lost between nodes). */
  gaps: number;
  missed: number;
  /** Messages seen twice (or out of order) from one origin: not delivered. */
  duplicates: number;
  /**
   * Direct messages (ctx.toConnection of a connection on another node): sent from here, received here (every node
   * receives every one), and delivered here (the connection was open on this node).
   */
  direct: { sent: number; received: number; delivered: number };
  /** Inbound messages refused, by reason (HOTLINE_E_CLUSTER_MESSAGE). */
  refused: { 'too-large': number; malformed: number };
  origins: OriginCounts[];
}

/** Senders' counters kept at most: a room published to after its counter was dropped gets a new stream. */
const MAX_SEND_COUNTERS = 100_000;
/** Origins remembered per subscribed room, and in the status table. */
const MAX_ORIGINS_PER_ROOM = 1_024;
const MAX_ORIGIN_STATS = 256;
/** A coded warning is logged at most this often (with the count since the last one). */
const LOG_EVERY_MS = 10_000;
/** close() waits this long for NATS to take what was published. */
const CLOSE_FLUSH_MS = 1_000;

interface SendCounter {
  subject: string;
  stream: number;
  seq: number;
}

interface RoomSubscription {
  sub: Subscription;
  /** The server has it: a flush (PING/PONG) sent after the SUB came back. */
  confirmed: boolean;
  /** The last stream and seq delivered per origin, in this room. */
  origins: Map<string, { stream: number; seq: number }>;
}

type Phase = 'open' | 'closed';

/**
 * Room messages across nodes. The host creates one per node with a cluster configured, and hands it to the room
 * registry as its relay.
 *
 * @example
 * const link = await NatsLink.open({ servers: 'nats://127.0.0.1:4222', noEcho: true });
 * const bus = new RoomBus(link, settings, { deliverHere: (room, msg) => rooms.deliverHere(room, msg), log });
 * rooms.relayTo(bus);
 */
export class RoomBus implements RoomRelay {
  readonly origin: string;
  readonly #link: NatsLink;
  readonly #s: RoomBusSettings;
  readonly #deps: RoomBusDeps;
  readonly #prefix: string;
  #phase: Phase = 'open';
  readonly #subs = new Map<string, RoomSubscription>();
  readonly #counters = new Map<string, SendCounter>();
  #nextStream = 1;
  /** Envelopes waiting for the link, in publish order. */
  #buffer: Array<{ subject: string; bytes: Buffer }> = [];
  #bufferHead = 0;
  #bufferedBytes = 0;
  readonly #offState: () => void;
  readonly #originStats = new Map<string, OriginCounts>();
  /** Subscriptions sent but not confirmed by a flush yet; one flush in flight confirms all that were sent before it. */
  readonly #unconfirmed = new Set<RoomSubscription>();
  #confirming = false;
  /** Set while the buffer waits out resumeDelay after a reconnect. */
  #resumeTimer: NodeJS.Timeout | undefined;
  readonly #lastLog = new Map<ErrorCode, { at: number; since: number }>();
  #published = 0;
  #bufferedTotal = 0;
  #dropped = 0;
  #refusedPublishes = 0;
  #received = 0;
  #delivered = 0;
  #gaps = 0;
  #missed = 0;
  #duplicates = 0;
  #refused = { 'too-large': 0, malformed: 0 };
  #directSent = 0;
  #directReceived = 0;
  #directDelivered = 0;
  readonly #directCounter: SendCounter;
  /** The subscription to the direct subject, made at start: a node may hold connections before it has a room. */
  #direct: RoomSubscription | undefined;

  constructor(link: NatsLink, settings: RoomBusSettings, deps: RoomBusDeps) {
    this.#link = link;
    this.#s = settings;
    this.#deps = deps;
    this.#prefix = `hl.${settings.name}`;
    this.origin = originOf(settings.node, randomBytes(6).toString('hex'));
    if (!isOrigin(this.origin)) throw new HotlineError('HOTLINE_E_CONFIG', `cluster.node ${JSON.stringify(settings.node)} makes no valid origin`);
    this.#offState = link.onState((state) => this.#linkChanged(state));
    this.#directCounter = { subject: directSubject(this.#prefix), stream: this.#nextStream++, seq: 0 };
    this.#direct = this.#subscribeTo(this.#directCounter.subject, undefined);
  }

  get phase(): Phase {
    return this.#phase;
  }

  // --- RoomRelay: called by the room registry ---

  roomChanged(room: string, here: boolean): void {
    if (this.#phase !== 'open') return;
    if (here) this.#subscribe(room);
    else this.#unsubscribe(room);
  }

  publish(room: string, data: MessageData): void {
    if (this.#phase !== 'open') return;
    const c = this.#counter(room);
    this.#out(c.subject, encodeEnvelope(this.origin, c.stream, ++c.seq, data));
  }

  /**
   * `ctx.toConnection(id).send(data)` for a connection not open on this node: published on the direct subject, which
   * every node receives, and delivered by the node that has it, if one does. False for a string that is no
   * connection id (nothing is published).
   */
  publishDirect(id: string, data: MessageData): boolean {
    if (typeof data !== 'string' && !(data instanceof Uint8Array)) throw new TypeError(`a message must be a string or a Uint8Array, got ${typeof data}`);
    if (this.#phase !== 'open' || !isConnectionId(id)) return false;
    const c = this.#directCounter;
    this.#directSent++;
    this.#out(c.subject, encodeEnvelope(this.origin, c.stream, ++c.seq, data, id));
    return true;
  }

  /** Publish now, buffer, or drop and count: one envelope on its way out, its seq already spent. */
  #out(subject: string, bytes: Buffer): void {
    if (this.#link.state === 'up' && this.#resumeTimer === undefined) {
      // Whatever is still buffered goes first: per-origin FIFO holds across an outage.
      if (this.#bufferHead !== this.#buffer.length) this.#flushBuffer();
      if (this.#bufferHead === this.#buffer.length) {
        this.#send(subject, bytes);
        return;
      }
    }
    if (this.#link.state !== 'closed' && this.#s.whileDown === 'buffer' && this.#buffer.length - this.#bufferHead < this.#s.maxBuffered && this.#bufferedBytes + bytes.byteLength <= this.#s.maxBufferedBytes) {
      this.#buffer.push({ subject, bytes });
      this.#bufferedBytes += bytes.byteLength;
      this.#bufferedTotal++;
      return;
    }
    this.#drop(1, this.#s.whileDown === 'buffer' ? 'the buffer is full' : 'whileDown is drop');
  }

  // --- status and lifecycle ---

  status(): RoomBusStatus {
    const link = this.#link.status();
    return {
      state: this.#phase === 'closed' ? 'closed' : link.state,
      name: this.#s.name,
      node: this.#s.node,
      origin: this.origin,
      servers: link.servers,
      whileDown: this.#s.whileDown,
      disconnects: link.disconnects,
      subscriptions: this.#subs.size,
      unconfirmedSubscriptions: this.#unconfirmed.size,
      published: this.#published,
      buffered: this.#buffer.length - this.#bufferHead,
      bufferedBytes: this.#bufferedBytes,
      bufferedTotal: this.#bufferedTotal,
      dropped: this.#dropped,
      refusedPublishes: this.#refusedPublishes,
      received: this.#received,
      delivered: this.#delivered,
      gaps: this.#gaps,
      missed: this.#missed,
      duplicates: this.#duplicates,
      direct: { sent: this.#directSent, received: this.#directReceived, delivered: this.#directDelivered },
      refused: { ...this.#refused },
      origins: [...this.#originStats.values()].map((o) => ({ ...o })),
    };
  }

  /**
   * Unsubscribe, give NATS up to a second to take what was published, close the link. What is still buffered then
   * is dropped and counted. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#phase === 'closed') return;
    this.#phase = 'closed';
    this.#offState();
    clearTimeout(this.#resumeTimer);
    this.#resumeTimer = undefined;
    for (const s of this.#subs.values()) this.#unsubscribeQuietly(s.sub);
    this.#subs.clear();
    if (this.#direct) this.#unsubscribeQuietly(this.#direct.sub);
    this.#direct = undefined;
    this.#unconfirmed.clear();
    // Still waiting out resumeDelay: NATS is up, so the buffer goes now rather than being dropped.
    if (this.#link.state === 'up') this.#flushBuffer();
    const left = this.#buffer.length - this.#bufferHead;
    if (left > 0) this.#drop(left, 'the node is closing');
    this.#buffer = [];
    this.#bufferHead = 0;
    this.#bufferedBytes = 0;
    if (this.#link.state === 'up') {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.#link.nc.flush().catch(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, CLOSE_FLUSH_MS)))]);
      clearTimeout(timer);
    }
    await this.#link.close();
  }

  // --- inside ---

  #counter(room: string): SendCounter {
    let c = this.#counters.get(room);
    if (c) {
      // Most recently used last, so the oldest idle room's counter is the one dropped at the bound.
      this.#counters.delete(room);
    } else {
      if (this.#counters.size >= MAX_SEND_COUNTERS) this.#counters.delete(this.#counters.keys().next().value!);
      c = { subject: roomSubject(this.#prefix, room), stream: this.#nextStream++ >>> 0, seq: 0 };
    }
    this.#counters.set(room, c);
    return c;
  }

  #send(subject: string, bytes: Buffer): void {
    try {
      this.#link.nc.publish(subject, bytes);
      this.#published++;
    } catch (err) {
      // Over the server's max_payload, or the client closed under us: counted, never thrown to the plugin.
      this.#refusedPublishes++;
      this.#warn('HOTLINE_E_CLUSTER_PUBLISH', `a room message of ${bytes.byteLength} bytes was refused by the NATS client: ${messageOf(err)}`);
    }
  }

  #drop(n: number, why: string): void {
    this.#dropped += n;
    this.#warn('HOTLINE_E_CLUSTER_DROPPED', `room messages not published to the other nodes (${why}; NATS ${this.#link.state})`, n);
  }

  #linkChanged(state: NatsLinkState): void {
    if (this.#phase !== 'open') return;
    clearTimeout(this.#resumeTimer);
    this.#resumeTimer = undefined;
    if (state === 'up') {
      // The client sent every subscription again on reconnecting: confirmed again once the server has them.
      for (const e of this.#subs.values()) this.#unconfirmed.add(e);
      if (this.#direct) this.#unconfirmed.add(this.#direct);
      this.#confirm();
      if (this.#bufferHead === this.#buffer.length || this.#s.resumeDelay === 0) this.#flushBuffer();
      else this.#resumeTimer = setTimeout(() => ((this.#resumeTimer = undefined), this.#flushBuffer()), this.#s.resumeDelay);
    } else if (state === 'closed') {
      const left = this.#buffer.length - this.#bufferHead;
      this.#buffer = [];
      this.#bufferHead = 0;
      this.#bufferedBytes = 0;
      if (left > 0) this.#drop(left, 'the NATS connection closed');
    }
  }

  /** Publish what was buffered, in order, before anything newer (publish() buffers while the buffer is not empty). */
  #flushBuffer(): void {
    const n = this.#buffer.length - this.#bufferHead;
    if (n === 0) return;
    while (this.#bufferHead < this.#buffer.length && this.#link.state === 'up') {
      const e = this.#buffer[this.#bufferHead]!;
      this.#buffer[this.#bufferHead++] = undefined as never;
      this.#bufferedBytes -= e.bytes.byteLength;
      this.#send(e.subject, e.bytes);
    }
    if (this.#bufferHead === this.#buffer.length) {
      this.#buffer = [];
      this.#bufferHead = 0;
    }
    this.#deps.log('info', `NATS is back: ${n} buffered room messages published`, { buffered: n });
  }

  #subscribe(room: string): void {
    if (this.#subs.has(room)) return;
    const entry = this.#subscribeTo(roomSubject(this.#prefix, room), room);
    if (entry) this.#subs.set(room, entry);
  }

  /** Subscribe to a room's subject, or to the direct subject (`room` undefined). */
  #subscribeTo(subject: string, room: string | undefined): RoomSubscription | undefined {
    const entry = { origins: new Map(), confirmed: false } as RoomSubscription;
    try {
      // A callback, not an async iterator: delivered in the client's read loop, in order, with no queue of its own.
      entry.sub = this.#link.nc.subscribe(subject, { callback: (err, msg) => this.#inbound(room, entry, err, msg) });
    } catch (err) {
      this.#warn('HOTLINE_E_CLUSTER_UNAVAILABLE', `cannot subscribe to ${room === undefined ? 'direct messages' : `room ${JSON.stringify(room.slice(0, 64))}`}: ${messageOf(err)}`);
      return undefined;
    }
    this.#unconfirmed.add(entry);
    this.#confirm();
    return entry;
  }

  /**
   * Confirm the subscriptions sent so far with one flush: the server answers a PING after it has processed every SUB
   * before it. A flush that fails (the link went down) is tried again: the client sends every subscription again when
   * it reconnects, and the next flush confirms them then.
   */
  #confirm(): void {
    if (this.#confirming || this.#unconfirmed.size === 0 || this.#phase !== 'open' || this.#link.state !== 'up') return;
    this.#confirming = true;
    const batch = [...this.#unconfirmed];
    this.#link.nc.flush().then(
      () => {
        for (const e of batch) {
          e.confirmed = true;
          this.#unconfirmed.delete(e);
        }
      },
      () => undefined,
    ).finally(() => {
      this.#confirming = false;
      this.#confirm();
    });
  }

  #unsubscribe(room: string): void {
    const s = this.#subs.get(room);
    if (!s) return;
    this.#subs.delete(room);
    this.#unconfirmed.delete(s);
    this.#unsubscribeQuietly(s.sub);
  }

  #unsubscribeQuietly(sub: Subscription): void {
    try {
      sub.unsubscribe();
    } catch {
      // The connection is closed: so is the subscription.
    }
  }

  /** A message on a room's subject, or on the direct subject (`room` undefined). */
  #inbound(room: string | undefined, entry: RoomSubscription, err: Error | null, msg: Msg): void {
    // An unsubscribed room's last messages may still be in the client's read buffer.
    if (err || (room === undefined ? this.#direct !== entry : this.#subs.get(room) !== entry)) return;
    const where = room === undefined ? 'the direct subject' : `room ${JSON.stringify(room.slice(0, 64))}`;
    const e = decodeEnvelope(msg.data, this.#s.maxPayload);
    if (isProblem(e)) {
      this.#refused[e.reason]++;
      this.#warn('HOTLINE_E_CLUSTER_MESSAGE', `refused a message on ${where}: ${e.reason}, ${e.detail}`);
      return;
    }
    // A direct message belongs on the direct subject, a room message on its room's: anything else is forged.
    if ((e.target === undefined) !== (room !== undefined)) {
      this.#refused.malformed++;
      this.#warn('HOTLINE_E_CLUSTER_MESSAGE', `refused a message on ${where}: ${room === undefined ? 'a room message' : 'a direct message'} on the wrong subject`);
      return;
    }
    // noEcho keeps this node's own messages away; one claiming its origin anyway was already delivered here.
    if (e.origin === this.origin) return;
    const stats = this.#statsOf(e.origin);
    const last = entry.origins.get(e.origin);
    if (last === undefined) {
      // The first message of this origin since this node subscribed: what came before was not for this node.
      if (entry.origins.size >= MAX_ORIGINS_PER_ROOM) entry.origins.delete(entry.origins.keys().next().value!);
      entry.origins.set(e.origin, { stream: e.stream, seq: e.seq });
    } else if (last.stream !== e.stream) {
      last.stream = e.stream;
      last.seq = e.seq;
    } else if (e.seq <= last.seq) {
      this.#duplicates++;
      stats.duplicates++;
      return;
    } else {
      const hole = e.seq - last.seq - 1;
      if (hole > 0) {
        this.#gaps++;
        this.#missed += hole;
        stats.missed += hole;
      }
      last.seq = e.seq;
    }
    stats.received++;
    if (room === undefined) this.#deliverDirect(e);
    else {
      this.#received++;
      this.#delivered += this.#deps.deliverHere(room, new PreparedMessage(e.data));
    }
  }

  #deliverDirect(e: Envelope): void {
    this.#directReceived++;
    if (this.#deps.deliverTo(e.target!, e.data)) this.#directDelivered++;
  }

  #statsOf(origin: string): OriginCounts {
    let s = this.#originStats.get(origin);
    if (!s) {
      if (this.#originStats.size >= MAX_ORIGIN_STATS) this.#originStats.delete(this.#originStats.keys().next().value!);
      this.#originStats.set(origin, (s = { origin, received: 0, missed: 0, duplicates: 0 }));
    }
    return s;
  }

  /** Log a coded warning at most every LOG_EVERY_MS per code, with how many happened since the last line. */
  #warn(code: ErrorCode, message: string, n = 1): void {
    const now = Date.now();
    let l = this.#lastLog.get(code);
    if (!l) this.#lastLog.set(code, (l = { at: 0, since: 0 }));
    l.since += n;
    if (now - l.at < LOG_EVERY_MS) return;
    this.#deps.log('warn', message, { code, count: l.since });
    l.at = now;
    l.since = 0;
  }
}

/** The resolved bus settings of `cluster`, or HOTLINE_E_CONFIG naming the bad field. */
export function resolveClusterSettings(o: ClusterOptions, maxPayload: number): RoomBusSettings {
  const name = o.name ?? 'default';
  if (typeof name !== 'string' || !CLUSTER_NAME_PATTERN.test(name)) throw new HotlineError('HOTLINE_E_CONFIG', `cluster.name must be 1-64 letters, digits, - or _, got ${JSON.stringify(name)}`);
  const whileDown = o.whileDown ?? 'buffer';
  if (whileDown !== 'buffer' && whileDown !== 'drop') throw new HotlineError('HOTLINE_E_CONFIG', `cluster.whileDown must be "buffer" or "drop", got ${JSON.stringify(whileDown)}`);
  const count = (field: string, v: number | undefined, fallback: number): number => {
    if (v === undefined) return fallback;
    if (!Number.isInteger(v) || v < 0) throw new HotlineError('HOTLINE_E_CONFIG', `cluster.${field} must be a whole number ≥ 0, got ${String(v)}`);
    return v;
  };
  const node = o.node ?? `${os.hostname()}-${process.pid}`;
  if (typeof node !== 'string' || node.length === 0) throw new HotlineError('HOTLINE_E_CONFIG', 'cluster.node must be a non-empty string');
  return {
    name,
    node,
    whileDown,
    maxBuffered: count('maxBuffered', o.maxBuffered, 10_000),
    maxBufferedBytes: count('maxBufferedBytes', o.maxBufferedBytes, 16 * 1024 * 1024),
    resumeDelay: count('resumeDelay', o.resumeDelay, 500),
    maxPayload,
  };
}
