/**
 * Presence across nodes on a NATS JetStream KV bucket (issue 13, DESIGN.md §9): each node is the only writer of one
 * record, under the key of its epoch (12 hex digits drawn at process start), listing its rooms and their members.
 * It rewrites the record at every change (coalesced: one write in flight, the next carries everything since) and at
 * every heartbeat, `seq` one higher each time. Every node watches the whole bucket and merges the records into its
 * view (presence-view.ts), which answers `ctx.members` and produces the join and leave events.
 *
 * Expiry is ours, by heartbeat age on the reader's own clock: NATS 2.9 ignores per-key TTLs, and the writer's clock
 * is not the reader's. A peer whose record has not moved for `expireAfter` (default 3 × heartbeat) is removed, its
 * members leaving; the sweep runs every heartbeat / 4, so a node killed -9 is gone everywhere within
 * expireAfter + heartbeat / 4 (+ one delivery) of its last write. A sweep that runs late (this process was stalled)
 * is skipped: the records that arrived meanwhile are read first. The bucket's max_age removes what nobody deletes.
 *
 *   opening ──start()──► running ──close()──► closed
 *
 * NATS unreachable (the link is degraded): local presence goes on (the view has this node's members at once); this
 * node's writes wait, counted (`deferredWrites`), and nothing is expired, since a node that hears nothing cannot
 * tell a dead peer from a live one. When the link is back: the bucket is opened again (a NATS restarted without its
 * store lost it), this node's record is re-published, the watch restarts, and every peer gets a fresh expiry window.
 * The others, meanwhile, expired this node (they did not hear it), and see its members join again.
 */
import { randomBytes } from 'node:crypto';
import { jetstream } from '@nats-io/jetstream';
import { type KV, type KvWatchEntry, Kvm } from '@nats-io/kv';
import { type ErrorCode, HotlineError, messageOf } from '../errors.js';
import type { NatsLink, NatsLinkState } from './nats-connection.js';
import { decodePresence, encodePresence, type PresenceBounds } from './presence-codec.js';
import type { ResolvedPresenceOptions } from './presence-options.js';
import { type PeerStatus, PresenceView, type RoomChange } from './presence-view.js';

export type PresencePhase = 'opening' | 'running' | 'closed';

/** What presence does to the world beside NATS: the clocks, the node's connection count, the log, the events. */
export interface PresenceDeps {
  /** Monotonic ms (expiry). */
  now(): number;
  /** Wall-clock ms (`since`, and the age of a record the bucket timestamped). */
  wallNow(): number;
  connections(): number;
  log(level: 'info' | 'warn', msg: string, fields?: object): void;
  changed(changes: RoomChange[]): void;
}

/** `status().presence` of a clustered host, for `hotline status`. */
export interface PresenceStatus {
  phase: PresencePhase;
  /** `up`, or `degraded` while NATS is unreachable (local presence only, writes deferred, nothing expired). */
  state: NatsLinkState;
  bucket: string;
  node: string;
  epoch: string;
  heartbeat: number;
  expireAfter: number;
  /** A later process of this node's name is running: this one no longer counts elsewhere. */
  superseded: boolean;
  seq: number;
  writes: number;
  writeErrors: number;
  /** Writes held back because NATS was unreachable (re-published when it is back). */
  deferredWrites: number;
  /** This node's last record was cut to the bounds (HOTLINE_E_PRESENCE_LIMIT). */
  incomplete: boolean;
  /** Records refused when read (HOTLINE_E_PRESENCE_RECORD), and the last one's reason. */
  refusedRecords: number;
  lastRefused?: { code: ErrorCode; message: string };
  /** Peers removed for not being heard within expireAfter, since start. */
  expiredPeers: number;
  /** Sweeps skipped because this process had been stalled (their expiry waits for the records read meanwhile). */
  lateSweeps: number;
  peers: PeerStatus[];
  /** Rooms with members anywhere, and the biggest ones with their local and global member counts. */
  roomCount: number;
  rooms: Array<{ room: string; local: number; global: number }>;
}

/** Rooms `hotline status` lists at most (the biggest). */
const STATUS_ROOMS = 100;
/** Pause before a watch that ended is opened again. */
const REWATCH_MS = 250;
/** How far ahead of the reader's clock a record's start time may be (clock skew between machines) before it is refused. */
const FUTURE_SINCE_MS = 24 * 3_600_000;
/** Warnings about refused records: one per this many ms at most (a flood of garbage must not flood the log). */
const WARN_EVERY_MS = 10_000;

export class ClusterPresence {
  readonly node: string;
  readonly epoch = randomBytes(6).toString('hex');
  readonly since: number;
  readonly view: PresenceView;
  #o: ResolvedPresenceOptions;
  #bounds: PresenceBounds;
  #link: NatsLink;
  #deps: PresenceDeps;
  #phase: PresencePhase = 'opening';
  #kv: KV | undefined;
  #seq = 0;
  #writing: Promise<void> | undefined;
  #dirty = false;
  /** An upgrade's old worker publishes the record as it was when the handover began (see freeze()). */
  #frozen: Map<string, string[]> | undefined;
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #sweepTimer: NodeJS.Timeout | undefined;
  #flushTimer: NodeJS.Timeout | undefined;
  #watch: { stop(): void } | undefined;
  #watching = false;
  #rewatchTimer: NodeJS.Timeout | undefined;
  #offState: (() => void) | undefined;
  #deletedOlder = new Set<string>();
  #lastWarn = 0;
  #lastSweep = 0;
  #counters = { writes: 0, writeErrors: 0, deferredWrites: 0, refusedRecords: 0, expiredPeers: 0, lateSweeps: 0 };
  #incomplete = false;
  #lastRefused: { code: ErrorCode; message: string } | undefined;

  constructor(link: NatsLink, node: string, options: ResolvedPresenceOptions, deps: PresenceDeps) {
    this.#link = link;
    this.node = node;
    this.#o = options;
    this.#bounds = { maxRecordBytes: options.maxRecordBytes, maxRooms: options.maxRooms, maxMembers: options.maxMembers };
    this.#deps = deps;
    this.since = deps.wallNow();
    this.view = new PresenceView({ node, epoch: this.epoch, since: this.since }, options.maxPeers, { now: deps.now, changed: deps.changed });
  }

  /** The sweep's period: a quarter of the heartbeat. */
  get #sweepEvery(): number {
    return Math.max(20, Math.floor(this.#o.heartbeat / 4));
  }

  get phase(): PresencePhase {
    return this.#phase;
  }

  /** Open the bucket, publish this node's record, watch the others'. Rejects HOTLINE_E_CLUSTER_UNAVAILABLE. */
  async start(): Promise<void> {
    if (this.#phase !== 'opening') throw new HotlineError('HOTLINE_E_CONFIG', `presence start() called while ${this.#phase}`);
    await this.#openBucket();
    // Through the one writer, so that a join meanwhile cannot put a second write in flight beside this one.
    this.#dirty = true;
    this.#kick();
    await this.#writing;
    await this.#startWatch();
    if ((this.#phase as PresencePhase) !== 'opening') return; // closed meanwhile
    this.#phase = 'running';
    this.#heartbeatTimer = setInterval(() => this.#flushSoon(0), this.#o.heartbeat);
    this.#heartbeatTimer.unref();
    this.#lastSweep = this.#deps.now();
    this.#sweepTimer = setInterval(() => this.#sweep(), this.#sweepEvery);
    this.#sweepTimer.unref();
    this.#offState = this.#link.onState((s) => {
      if (s === 'up') void this.#reconnected();
    });
  }

  // ── this node's members (the room registry's listener) ──

  joined(room: string, id: string): void {
    this.view.localJoined(room, id);
    this.#changedLocally();
  }

  left(room: string, id: string): void {
    this.view.localLeft(room, id);
    this.#changedLocally();
  }

  /**
   * A process upgrade hands this node's connections to a new process: from here on the record keeps listing them as
   * they were (while the new process starts listing them too), so the other nodes see no member leave and come back.
   * The new process's record replaces it (same node name) or the expiry ends it; close() leaves it in the bucket.
   */
  freeze(): void {
    if (this.#frozen) return;
    this.#frozen = new Map([...this.view.localRooms].map(([room, ids]) => [room, [...ids]]));
  }

  members(room: string): string[] {
    return this.view.members(room);
  }

  status(): PresenceStatus {
    return {
      phase: this.#phase,
      state: this.#link.state,
      bucket: this.#o.bucket,
      node: this.node,
      epoch: this.epoch,
      heartbeat: this.#o.heartbeat,
      expireAfter: this.#o.expireAfter,
      superseded: this.view.superseded,
      seq: this.#seq,
      ...this.#counters,
      incomplete: this.#incomplete,
      ...(this.#lastRefused && { lastRefused: this.#lastRefused }),
      peers: this.view.peers(),
      roomCount: this.view.roomCount,
      rooms: this.view.rooms(STATUS_ROOMS),
    };
  }

  /**
   * Stop, and delete this node's record (bounded by the op timeout) so the others see its members leave at once;
   * unless frozen (see close's body). Idempotent.
   */
  async close(): Promise<void> {
    if (this.#phase === 'closed') return;
    this.#phase = 'closed';
    clearInterval(this.#heartbeatTimer);
    clearInterval(this.#sweepTimer);
    clearTimeout(this.#flushTimer);
    clearTimeout(this.#rewatchTimer);
    this.#offState?.();
    this.#watch?.stop();
    await this.#writing;
    // Frozen (an upgrade's old worker): the record stays for the new worker to replace (same node name) or for the
    // expiry to remove. Deleted here, it would make the moved members leave everywhere until the new worker's first
    // record, which may come after this worker is gone (the supervisor releases the old worker before the commit).
    if (this.#kv && this.#link.state === 'up' && !this.#frozen) {
      await this.#kv.delete(this.epoch).catch(() => undefined);
    }
  }

  // ── writing this node's record ──

  #changedLocally(): void {
    if (this.#frozen) return;
    // A burst of joins (a client joining ten rooms, an upgrade's adoption) becomes one write.
    this.#flushSoon(5);
  }

  #flushSoon(delay: number): void {
    if (this.#phase === 'closed') return;
    this.#dirty = true;
    if (this.#writing || this.#flushTimer) return;
    if (delay === 0) return void this.#kick();
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      this.#kick();
    }, delay);
  }

  #kick(): void {
    if (this.#writing || !this.#dirty) return;
    // Cleared in finally(), which always runs later: a loop that ends before its first await (NATS down) must not
    // clear it before it was set, or no write would ever start again.
    const writing: Promise<void> = (async () => {
      while (this.#dirty && this.#phase !== 'closed') {
        if (this.#link.state !== 'up') {
          // Published when the link is back (#reconnected), not dropped by the client without a word.
          this.#counters.deferredWrites++;
          break;
        }
        if (!(await this.#write())) {
          // The next heartbeat tries again: one attempt per heartbeat, not a loop against a failing server.
          this.#dirty = true;
          break;
        }
      }
    })().finally(() => {
      if (this.#writing === writing) this.#writing = undefined;
    });
    this.#writing = writing;
  }

  /** Write the record now; false when the write failed (counted and, rate-limited, logged). */
  async #write(): Promise<boolean> {
    this.#dirty = false;
    const kv = this.#kv;
    if (!kv) return false;
    const { bytes, incomplete } = encodePresence(
      {
        node: this.node,
        epoch: this.epoch,
        since: this.since,
        seq: ++this.#seq,
        heartbeat: this.#o.heartbeat,
        connections: this.#deps.connections(),
        rooms: this.#frozen ?? this.view.localRooms,
        incomplete: false,
      },
      this.#bounds,
    );
    if (incomplete !== this.#incomplete) {
      this.#incomplete = incomplete;
      if (incomplete) {
        const err = new HotlineError('HOTLINE_E_PRESENCE_LIMIT', `this node's presence is over the bounds (maxRooms ${this.#bounds.maxRooms}, maxMembers ${this.#bounds.maxMembers}, maxRecordBytes ${this.#bounds.maxRecordBytes}); the other nodes see part of its members`);
        this.#deps.log('warn', err.message, { code: err.code });
      }
    }
    try {
      // Bounded by the JetStream context's timeout (#openBucket).
      await kv.put(this.epoch, bytes);
      this.#counters.writes++;
      return true;
    } catch (err) {
      this.#counters.writeErrors++;
      this.#warn(`presence: writing this node's record failed: ${messageOf(err)}`, { code: 'HOTLINE_E_CLUSTER_UNAVAILABLE' });
      return false;
    }
  }

  async #openBucket(): Promise<void> {
    const kvm = new Kvm(jetstream(this.#link.nc, { timeout: this.#o.timeout }));
    try {
      this.#kv = await kvm.create(this.#o.bucket, { history: 1, ttl: this.#o.maxAge, maxValueSize: this.#o.maxRecordBytes });
    } catch (err) {
      throw new HotlineError('HOTLINE_E_CLUSTER_UNAVAILABLE', `cannot open the NATS KV bucket ${this.#o.bucket} (JetStream on? -js): ${messageOf(err)}`, { cause: err });
    }
  }

  // ── reading the others' ──

  async #startWatch(): Promise<void> {
    const kv = this.#kv;
    if (!kv || this.#phase === 'closed') return;
    let it;
    try {
      it = await kv.watch();
    } catch (err) {
      this.#warn(`presence: cannot watch the bucket ${this.#o.bucket}: ${messageOf(err)}`, { code: 'HOTLINE_E_CLUSTER_UNAVAILABLE' });
      this.#rewatch();
      return;
    }
    // close() may have run during the await (TypeScript narrows the phase as if it could not).
    if ((this.#phase as PresencePhase) === 'closed') return void it.stop();
    this.#watch = it;
    this.#watching = true;
    void (async () => {
      try {
        for await (const e of it) this.#entry(e);
      } catch {
        // The iterator ends with its consumer; a new watch follows.
      }
      if (this.#watch === it) {
        this.#watching = false;
        this.#watch = undefined;
        this.#rewatch();
      }
    })();
  }

  #rewatch(): void {
    if (this.#phase === 'closed' || this.#rewatchTimer) return;
    this.#rewatchTimer = setTimeout(() => {
      this.#rewatchTimer = undefined;
      if (this.#link.state === 'up' && !this.#watching) void this.#startWatch();
    }, REWATCH_MS);
    this.#rewatchTimer.unref();
  }

  /** One value of the bucket: validated, then merged; a bad one refused and counted, never thrown. */
  #entry(e: KvWatchEntry): void {
    const key = e.key;
    if (e.operation !== 'PUT') {
      this.view.removed(key);
      return;
    }
    let r;
    try {
      r = decodePresence(key, e.value, this.#bounds);
    } catch (err) {
      return this.#refused(err instanceof HotlineError ? err : new HotlineError('HOTLINE_E_PRESENCE_RECORD', messageOf(err)), key);
    }
    const wall = this.#deps.wallNow();
    // A start time a day ahead of this clock is forged or broken, and would make the record win over every later
    // process of its name (the later one counts): refused, like any other bad record.
    if (r.since > wall + FUTURE_SINCE_MS) {
      return this.#refused(new HotlineError('HOTLINE_E_PRESENCE_RECORD', `presence record ${key}: its start time is ${Math.round((r.since - wall) / 3_600_000)} h ahead of this node's clock`), key);
    }
    const fresh = wall - e.created.getTime() <= this.#o.expireAfter;
    const wasSuperseded = this.view.superseded;
    const outcome = this.view.apply(r, fresh);
    if (outcome === 'peer-limit') {
      return this.#refused(new HotlineError('HOTLINE_E_PRESENCE_RECORD', `presence record ${key}: over the ${this.#o.maxPeers} peers tracked (maxPeers)`), key);
    }
    if (outcome === 'older-self' && !this.#deletedOlder.has(key)) {
      // This node's previous process (killed, or the old side of an upgrade): this one replaces it.
      this.#deletedOlder.add(key);
      if (this.#deletedOlder.size > this.#o.maxPeers) this.#deletedOlder.clear();
      void this.#kv?.delete(key).catch(() => undefined);
    }
    if (!wasSuperseded && this.view.superseded) {
      this.#deps.log('warn', `presence: a later process named ${this.node} (epoch ${r.epoch}) runs; this one (epoch ${this.epoch}) no longer counts on the other nodes (an upgrade's old worker, or two nodes given one cluster.name)`);
    }
  }

  #refused(err: HotlineError, key: string): void {
    this.#counters.refusedRecords++;
    this.#lastRefused = { code: err.code, message: err.message };
    this.#warn(err.message, { code: err.code, key: key.slice(0, 64), refused: this.#counters.refusedRecords });
  }

  #sweep(): void {
    // Deaf (NATS away, or no watch): silence proves nothing, so nobody is expired.
    if (this.#link.state !== 'up' || !this.#watching) return;
    // Late by more than a round: this process was stalled (CPU starvation, a long GC), and the records that arrived
    // meanwhile are still unread (timers run before I/O in the event loop). Expiring now would remove live peers.
    // The next round comes after they are read.
    const now = this.#deps.now();
    const late = now - this.#lastSweep > 2 * this.#sweepEvery;
    this.#lastSweep = now;
    if (late) {
      this.#counters.lateSweeps++;
      return;
    }
    for (const p of this.view.expire(this.#o.expireAfter)) {
      this.#counters.expiredPeers++;
      this.#deps.log('info', `presence: node ${p.node} (epoch ${p.epoch}) not heard for ${p.lastHeardMs} ms: removed, its ${p.members} member(s) left`, { node: p.node, epoch: p.epoch });
    }
  }

  async #reconnected(): Promise<void> {
    if (this.#phase !== 'running') return;
    this.view.heardAllNow();
    try {
      await this.#openBucket();
    } catch (err) {
      this.#warn(messageOf(err), { code: 'HOTLINE_E_CLUSTER_UNAVAILABLE' });
    }
    this.#flushSoon(0);
    this.#watch?.stop();
    this.#watch = undefined;
    this.#watching = false;
    await this.#startWatch();
  }

  #warn(msg: string, fields: object): void {
    const now = this.#deps.now();
    if (now - this.#lastWarn < WARN_EVERY_MS) return;
    this.#lastWarn = now;
    this.#deps.log('warn', msg, fields);
  }
}
