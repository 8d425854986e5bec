/**
 * Room membership, owned by the host (DESIGN.md §9): a room is a name and the set of connections in it. It is not
 * plugin state, so a swap leaves it alone, and an upgrade carries each connection's rooms with it
 * (src/handoff/connection-export.ts).
 *
 * Both directions are indexed: room → members, so a delivery walks the members only (O(members), never O(all
 * connections)); member → rooms, so leaving every room on close costs what the member joined. A room with no member
 * is deleted: an empty room holds no memory.
 */
import { HotlineError } from '../errors.js';
import type { MessageData } from '../plugin/contract.js';
import { PreparedMessage } from './prepared-message.js';
import { MAX_ROOMS_PER_CONNECTION, checkRoomName } from './room-name.js';

/** What a room holds: a connection, as the registry needs it. */
export interface RoomMember {
  readonly id: string;
  /** Queue a prepared message; false when the member no longer takes messages (closing or closed). */
  sendPrepared(msg: PreparedMessage): boolean;
}

// --- cluster relay (issue 13, src/cluster/room-bus.ts): the only coupling between rooms and the cluster bus. ---
/** What carries room messages to the other nodes. The rooms folder names it; the cluster folder implements it. */
export interface RoomRelay {
  /** `room` got its first member on this node (`here` true) or lost its last (false): subscribe or unsubscribe. */
  roomChanged(room: string, here: boolean): void;
  /** `ctx.to(room).send(data)` ran on this node: carry `data` to the members on the other nodes. */
  publish(room: string, data: MessageData): void;
  /** `ctx.toConnection(id)` of a connection not open on this node: to the node that has it. False: not sent. */
  publishDirect(id: string, data: MessageData): boolean;
}
// --- end cluster relay ---
/** issue 13 (presence): told of each membership change, after it happened. Must not throw. */
export interface RoomListener {
  joined(room: string, id: string): void;
  left(room: string, id: string): void;
}

export class RoomRegistry<M extends RoomMember> {
  // ── issue 13, presence (src/cluster/presence.ts sets these two; absent, the registry is all there is) ──
  /** Told of every join and leave. */
  listener: RoomListener | undefined = undefined;
  /** Where `ctx.members` reads a room's members: with a cluster, every node's; absent, this registry's. */
  membersOf: ((room: string) => string[]) | undefined = undefined;

  readonly #rooms = new Map<string, Set<M>>();
  readonly #joined = new Map<M, Set<string>>();
  readonly #maxPerMember: number;
  #relay: RoomRelay | undefined;

  constructor(maxPerMember = MAX_ROOMS_PER_CONNECTION) {
    this.#maxPerMember = maxPerMember;
  }

  /** Rooms with at least one member. */
  get size(): number {
    return this.#rooms.size;
  }

  /**
   * Carry room messages across nodes through `relay` (the cluster bus), or stop (undefined). The rooms that already
   * have members are announced to it at once: an upgrade's adoption may join before the bus is attached.
   */
  relayTo(relay: RoomRelay | undefined): void {
    this.#relay = relay;
    if (relay) for (const room of this.#rooms.keys()) relay.roomChanged(room, true);
  }

  /**
   * Send `data` to connection `id` on another node, through the relay: false when there is no cluster (or `id` is no
   * connection id). The node that has it delivers it.
   */
  sendElsewhere(id: string, data: MessageData): boolean {
    return this.#relay?.publishDirect(id, data) ?? false;
  }

  /** The rooms with members here and how many each has, the largest first, at most `limit` of them. */
  largest(limit: number): Array<{ room: string; members: number }> {
    const all = [...this.#rooms].map(([room, m]) => ({ room, members: m.size }));
    all.sort((a, b) => b.members - a.members || (a.room < b.room ? -1 : 1));
    return all.slice(0, limit);
  }

  /**
   * Put `member` in `room`. True when it joined, false when it was in it already. HOTLINE_E_ROOM_NAME for a bad
   * name, HOTLINE_E_ROOM_LIMIT when the member is in the most rooms it may be in; nothing changes then.
   */
  join(member: M, room: string): boolean {
    checkRoomName(room);
    let rooms = this.#joined.get(member);
    if (rooms?.has(room)) return false;
    if (rooms && rooms.size >= this.#maxPerMember) {
      throw new HotlineError('HOTLINE_E_ROOM_LIMIT', `connection ${member.id} is in ${rooms.size} rooms already, the most one may be in; "${room.slice(0, 64)}" was not joined`);
    }
    if (!rooms) this.#joined.set(member, (rooms = new Set()));
    rooms.add(room);
    let members = this.#rooms.get(room);
    if (!members) {
      this.#rooms.set(room, (members = new Set()));
      this.#relay?.roomChanged(room, true);
    }
    members.add(member);
    this.listener?.joined(room, member.id);
    return true;
  }

  /** Take `member` out of `room`. True when it was in it. */
  leave(member: M, room: string): boolean {
    checkRoomName(room);
    const rooms = this.#joined.get(member);
    if (!rooms?.delete(room)) return false;
    if (rooms.size === 0) this.#joined.delete(member);
    this.#drop(room, member);
    return true;
  }

  /** Take `member` out of every room: it closed, or moved to another process. Idempotent. */
  leaveAll(member: M): void {
    const rooms = this.#joined.get(member);
    if (!rooms) return;
    this.#joined.delete(member);
    for (const room of rooms) this.#drop(room, member);
  }

  /** The rooms `member` is in, in the order it joined them. A copy. */
  roomsOf(member: M): string[] {
    const rooms = this.#joined.get(member);
    return rooms ? [...rooms] : [];
  }

  /** issue 13: the rooms with members, in the order they got their first one. */
  roomNames(): IterableIterator<string> {
    return this.#rooms.keys();
  }

  /** The ids of the members of `room`, in the order they joined. */
  memberIds(room: string): string[] {
    checkRoomName(room);
    const members = this.#rooms.get(room);
    if (!members) return [];
    const ids = new Array<string>(members.size);
    let i = 0;
    for (const m of members) ids[i++] = m.id;
    return ids;
  }

  /** issue 13: what `ctx.members(room)` answers: every node's members with a cluster, this process's without. */
  members(room: string): Promise<string[]> {
    checkRoomName(room);
    return Promise.resolve(this.membersOf ? this.membersOf(room) : this.memberIds(room));
  }

  /** How many members `room` has. */
  count(room: string): number {
    return this.#rooms.get(room)?.size ?? 0;
  }

  /**
   * Send `data` to every member of `room` but `except`: encoded once (prepared-message.ts), one write per member,
   * each member's own send bound applying (Connection.sendPrepared). Returns how many members it was queued to.
   */
  deliver(room: string, data: MessageData, except?: M): number {
    checkRoomName(room);
    const msg = new PreparedMessage(data);
    // With a cluster, every send is published, members here or not: the other nodes' members are not known here.
    this.#relay?.publish(room, data);
    return this.deliverHere(room, msg, except);
  }

  /**
   * Send a prepared message to the members of `room` on this node only: what {@link deliver} does locally, and what
   * the cluster bus does with a message from another node (which must not be published again).
   */
  deliverHere(room: string, msg: PreparedMessage, except?: M): number {
    const members = this.#rooms.get(room);
    if (!members) return 0;
    let n = 0;
    // A member closed as a slow consumer by its own send stays in the set until its close is handled: sendPrepared
    // then returns false for it. Set iteration tolerates a delete during the walk anyway.
    for (const m of members) if (m !== except && m.sendPrepared(msg)) n++;
    return n;
  }

  #drop(room: string, member: M): void {
    const members = this.#rooms.get(room);
    if (!members) return;
    if (!members.delete(member)) return;
    if (members.size === 0) {
      this.#rooms.delete(room);
      this.#relay?.roomChanged(room, false);
    }
    this.listener?.left(room, member.id);
  }
}
