/**
 * Who is in which room across the cluster, as one node sees it (issue 13): its own members (from its room registry,
 * authoritative) merged with the last record of every live peer (from the presence bucket). Pure logic, no I/O: the
 * caller (nats-presence.ts) feeds it records and the time, and it answers `members(room)` and reports each change as
 * join and leave events.
 *
 * A room's members are the union of the connection ids every live source lists, kept as a count per id: an id joins
 * when its first source lists it and leaves when its last one stops. So a connection that moves between two
 * processes of one node (a process upgrade) is one member throughout, not two, and not a leave and a join.
 *
 * A peer counts while it is heard: a record whose `seq` moved on since the last one. A record seen once and never
 * again is not a live node (a dead node's last record, read by a node that starts after it died): it stays `pending`,
 * counts for nothing, and is forgotten at expiry, unless it was written recently (the caller says `fresh`, by the
 * bucket's timestamp). A peer not heard for `expireAfter` is removed, and its members leave.
 *
 * Of the processes that share one node name, only the one started last (`since`, then epoch) counts; the others are
 * `superseded`. A node restarted under its name replaces its old entries at once, instead of doubling them until
 * they expire. Its own older records are the caller's to delete.
 */
import type { PresenceChange } from '../plugin/contract.js';
import type { PresenceRecord } from './presence-codec.js';

/** One room's change: what `onPresence(room, { joined, left }, ctx)` receives. */
export interface RoomChange extends PresenceChange {
  room: string;
}

/** A peer's standing: `pending` until heard twice (or fresh), `active` when it counts, `superseded` by a later process of its name. */
export type PeerPhase = 'pending' | 'active' | 'superseded';

/** A peer as `hotline status` shows it. */
export interface PeerStatus {
  node: string;
  epoch: string;
  phase: PeerPhase;
  connections: number;
  rooms: number;
  members: number;
  seq: number;
  heartbeat: number;
  /** Ms since its last record that moved `seq` on. */
  lastHeardMs: number;
  /** It had more than the bounds let it publish. */
  incomplete: boolean;
}

interface Peer {
  record: PresenceRecord;
  phase: PeerPhase;
  /** When it was last heard (the view's clock). */
  heardAt: number;
  /** What it adds to the counts now: its rooms while active, nothing otherwise. */
  counted: Map<string, string[]> | undefined;
}

/** What happened to a record given to {@link PresenceView.apply}. */
export type ApplyOutcome = 'applied' | 'unchanged' | 'own' | 'older-self' | 'peer-limit';

export interface PresenceViewDeps {
  /** A monotonic clock, in ms. */
  now(): number;
  /** Rooms whose members changed, once per batch (a record applied, a local join or leave, an expiry). */
  changed(changes: RoomChange[]): void;
}

export interface SelfIdentity {
  node: string;
  epoch: string;
  since: number;
}

export class PresenceView {
  readonly self: SelfIdentity;
  /** Room → member id → how many sources list it. */
  readonly #global = new Map<string, Map<string, number>>();
  /** This node's own members, as its room registry told them. */
  readonly #local = new Map<string, Set<string>>();
  readonly #peers = new Map<string, Peer>();
  readonly #maxPeers: number;
  readonly #deps: PresenceViewDeps;
  /** A later process of this node's name was seen: this one no longer counts on the other nodes. */
  superseded = false;

  constructor(self: SelfIdentity, maxPeers: number, deps: PresenceViewDeps) {
    this.self = self;
    this.#maxPeers = maxPeers;
    this.#deps = deps;
  }

  // ── this node ──

  localJoined(room: string, id: string): void {
    let ids = this.#local.get(room);
    if (!ids) this.#local.set(room, (ids = new Set()));
    if (ids.has(id)) return;
    ids.add(id);
    const changes = new Changes();
    this.#add(room, id, changes);
    this.#emit(changes);
  }

  localLeft(room: string, id: string): void {
    const ids = this.#local.get(room);
    if (!ids?.delete(id)) return;
    if (ids.size === 0) this.#local.delete(room);
    const changes = new Changes();
    this.#remove(room, id, changes);
    this.#emit(changes);
  }

  /** This node's rooms and their member ids, in join order: what its record lists. */
  get localRooms(): ReadonlyMap<string, ReadonlySet<string>> {
    return this.#local;
  }

  // ── the peers ──

  /**
   * Take a record read from the bucket. `fresh`: the bucket wrote it within the expiry window, so a first sight
   * counts at once; otherwise the peer counts from its next record.
   */
  apply(r: PresenceRecord, fresh: boolean): ApplyOutcome {
    if (r.epoch === this.self.epoch) return 'own';
    if (r.node === this.self.node && !later(r, this.self)) return 'older-self';
    const now = this.#deps.now();
    let p = this.#peers.get(r.epoch);
    if (!p) {
      if (this.#peers.size >= this.#maxPeers) return 'peer-limit';
      p = { record: r, phase: fresh ? 'active' : 'pending', heardAt: now, counted: undefined };
      this.#peers.set(r.epoch, p);
    } else {
      // A record read again (a watch restarted after a reconnect) says nothing new about liveness.
      if (r.seq <= p.record.seq) return 'unchanged';
      p.record = r;
      p.heardAt = now;
      if (p.phase === 'pending') p.phase = 'active';
    }
    if (r.node === this.self.node && !this.superseded) this.superseded = true;
    const changes = new Changes();
    this.#settle(r.node, changes);
    this.#emit(changes);
    return 'applied';
  }

  /** The peer's key was deleted (it closed cleanly) or purged. */
  removed(epoch: string): boolean {
    const p = this.#peers.get(epoch);
    if (!p) return false;
    const changes = new Changes();
    this.#drop(epoch, p, changes);
    this.#emit(changes);
    return true;
  }

  /** Remove the peers not heard for `after` ms; returns the ones removed. */
  expire(after: number): PeerStatus[] {
    const now = this.#deps.now();
    const gone: PeerStatus[] = [];
    const changes = new Changes();
    for (const [epoch, p] of this.#peers) {
      if (now - p.heardAt <= after) continue;
      gone.push(this.#status(p, now));
      this.#drop(epoch, p, changes);
    }
    this.#emit(changes);
    return gone;
  }

  /**
   * This node could not hear anything for a while (its NATS link was down): count every peer as heard now, so that
   * the live ones are not expired before their next heartbeat reaches this node again.
   */
  heardAllNow(): void {
    const now = this.#deps.now();
    for (const p of this.#peers.values()) p.heardAt = now;
  }

  // ── queries ──

  /** The ids of the room's members on every node, in the order this view learnt of them. */
  members(room: string): string[] {
    const m = this.#global.get(room);
    return m ? [...m.keys()] : [];
  }

  /** How many members the room has on every node. */
  count(room: string): number {
    return this.#global.get(room)?.size ?? 0;
  }

  localCount(room: string): number {
    return this.#local.get(room)?.size ?? 0;
  }

  /** Rooms with at least one member anywhere. */
  get roomCount(): number {
    return this.#global.size;
  }

  /** The `limit` biggest rooms, with local and global member counts. */
  rooms(limit: number): Array<{ room: string; local: number; global: number }> {
    const out: Array<{ room: string; local: number; global: number }> = [];
    for (const [room, m] of this.#global) out.push({ room, local: this.localCount(room), global: m.size });
    out.sort((a, b) => b.global - a.global || (a.room < b.room ? -1 : 1));
    return out.slice(0, limit);
  }

  peers(): PeerStatus[] {
    const now = this.#deps.now();
    return [...this.#peers.values()].map((p) => this.#status(p, now));
  }

  get peerCount(): number {
    return this.#peers.size;
  }

  // ── inside ──

  #status(p: Peer, now: number): PeerStatus {
    const r = p.record;
    let members = 0;
    for (const ids of r.rooms.values()) members += ids.length;
    return { node: r.node, epoch: r.epoch, phase: p.phase, connections: r.connections, rooms: r.rooms.size, members, seq: r.seq, heartbeat: r.heartbeat, lastHeardMs: Math.round(now - p.heardAt), incomplete: r.incomplete };
  }

  #drop(epoch: string, p: Peer, changes: Changes): void {
    this.#count(p, undefined, changes);
    this.#peers.delete(epoch);
    this.#settle(p.record.node, changes);
  }

  /** Of the peers named `node`, the one started last counts; the others are superseded. */
  #settle(node: string, changes: Changes): void {
    let winner: Peer | undefined;
    for (const p of this.#peers.values()) {
      if (p.record.node !== node || p.phase === 'pending') continue;
      if (!winner || later(p.record, winner.record)) winner = p;
    }
    // The winner's members are counted before the others' are retracted: a member both list stays, with no event.
    if (winner) {
      winner.phase = 'active';
      this.#count(winner, winner.record.rooms, changes);
    }
    for (const p of this.#peers.values()) {
      if (p.record.node !== node || p.phase === 'pending' || p === winner) continue;
      p.phase = 'superseded';
      this.#count(p, undefined, changes);
    }
  }

  /** Make what `p` adds to the counts be `rooms` (undefined: nothing), recording each id that joined or left. */
  #count(p: Peer, rooms: Map<string, string[]> | undefined, changes: Changes): void {
    const before = p.counted;
    if (before === rooms) return;
    p.counted = rooms;
    if (before) {
      for (const [room, ids] of before) {
        const now = rooms?.get(room);
        const keep = now && now.length > 0 ? new Set(now) : undefined;
        for (const id of ids) if (!keep?.has(id)) this.#remove(room, id, changes);
      }
    }
    if (rooms) {
      for (const [room, ids] of rooms) {
        const was = before?.get(room);
        const had = was && was.length > 0 ? new Set(was) : undefined;
        for (const id of ids) if (!had?.has(id)) this.#add(room, id, changes);
      }
    }
  }

  #add(room: string, id: string, changes: Changes): void {
    let m = this.#global.get(room);
    if (!m) this.#global.set(room, (m = new Map()));
    const n = m.get(id) ?? 0;
    m.set(id, n + 1);
    if (n === 0) changes.joined(room, id);
  }

  #remove(room: string, id: string, changes: Changes): void {
    const m = this.#global.get(room);
    const n = m?.get(id);
    if (!m || n === undefined) return;
    if (n > 1) return void m.set(id, n - 1);
    m.delete(id);
    if (m.size === 0) this.#global.delete(room);
    changes.left(room, id);
  }

  #emit(changes: Changes): void {
    if (changes.size > 0) this.#deps.changed(changes.list());
  }
}

/** True when `a` is a later process than `b`: started later, or at the same ms with the greater epoch. */
function later(a: { since: number; epoch: string }, b: { since: number; epoch: string }): boolean {
  return a.since > b.since || (a.since === b.since && a.epoch > b.epoch);
}

/** The joins and leaves of one batch, by room. An id that left and joined again in one batch is both. */
class Changes {
  readonly #rooms = new Map<string, RoomChange>();

  get size(): number {
    return this.#rooms.size;
  }

  joined(room: string, id: string): void {
    this.#of(room).joined.push(id);
  }

  left(room: string, id: string): void {
    this.#of(room).left.push(id);
  }

  list(): RoomChange[] {
    return [...this.#rooms.values()];
  }

  #of(room: string): RoomChange {
    let c = this.#rooms.get(room);
    if (!c) this.#rooms.set(room, (c = { room, joined: [], left: [] }));
    return c;
  }
}
