/**
 * A host's presence (issue 13): what joins the room registry, the plugin's `onPresence` events and, with a cluster,
 * the presence bucket every node shares. The host creates one, always:
 * - without a cluster, the registry's joins and leaves become `onPresence` events as they happen, and `ctx.members`
 *   reads the registry (nothing else is kept);
 * - with one, they go through the cluster's view (nats-presence.ts), which adds the other nodes' members, and
 *   `ctx.members` reads that view.
 */
import os from 'node:os';
import { HotlineError } from '../errors.js';
import type { RoomListener } from '../rooms/room-registry.js';
import type { NatsLink } from './nats-connection.js';
import { isNodeName } from './presence-codec.js';
import { PresenceEvents, type PresenceGate } from './presence-events.js';
import { type PresenceOptions, type ResolvedPresenceOptions, resolvePresenceOptions } from './presence-options.js';
import { ClusterPresence, type PresenceStatus } from './nats-presence.js';

/** The presence part of the host's `cluster` option, resolved. */
export interface PresenceSettings {
  node: string;
  options: ResolvedPresenceOptions;
}

/**
 * `cluster: { node, name, presence }` → the presence settings, or false for `presence: false`. The default bucket
 * is per cluster name, so two clusters on one NATS do not see each other's members.
 */
export function resolvePresenceSettings(c: { name?: string; node?: string; presence?: PresenceOptions | false }): PresenceSettings | false {
  if (c.presence === false) return false;
  const node = c.node ?? `${os.hostname()}-${process.pid}`;
  if (!isNodeName(node)) throw new HotlineError('HOTLINE_E_CONFIG', `cluster.node must be 1-128 letters, digits, '.', '_', ':' or '-', got ${JSON.stringify(node)}`);
  const name = c.name ?? 'default';
  const bucket = c.presence?.bucket ?? (name === 'default' ? 'hotline_presence' : `hotline_presence_${name}`);
  return { node, options: resolvePresenceOptions({ ...c.presence, bucket }) };
}

/** What presence needs of the room registry (src/rooms/room-registry.ts). */
export interface PresenceRooms {
  listener: RoomListener | undefined;
  membersOf: ((room: string) => string[]) | undefined;
  roomNames(): Iterable<string>;
  memberIds(room: string): string[];
}

export interface HostPresenceDeps {
  rooms: PresenceRooms;
  gate: PresenceGate;
  connections(): number;
  log(level: 'info' | 'warn', msg: string, fields?: object): void;
}

/** Events waiting for onPresence without a cluster (with one, `cluster.presence.maxQueuedEvents`). */
const LOCAL_MAX_QUEUED = 10_000;

export class HostPresence {
  readonly events: PresenceEvents;
  #deps: HostPresenceDeps;
  #settings: PresenceSettings | false;
  #cluster: ClusterPresence | undefined;

  constructor(settings: PresenceSettings | false, deps: HostPresenceDeps) {
    this.#deps = deps;
    this.#settings = settings;
    this.events = new PresenceEvents(deps.gate, settings ? settings.options.maxQueuedEvents : LOCAL_MAX_QUEUED);
    const events = this.events;
    // Without a cluster, a change is one event, at once.
    deps.rooms.listener = {
      joined: (room, id) => events.push([{ room, joined: [id], left: [] }]),
      left: (room, id) => events.push([{ room, joined: [], left: [id] }]),
    };
  }

  /** With a cluster: open the presence bucket on `link` and merge every node's members from now on. */
  async start(link: NatsLink | undefined): Promise<void> {
    const s = this.#settings;
    if (!s || !link || this.#cluster) return;
    const d = this.#deps;
    const cluster = new ClusterPresence(link, s.node, s.options, {
      now: () => performance.now(),
      wallNow: () => Date.now(),
      connections: d.connections,
      log: d.log,
      changed: (changes) => this.events.push(changes),
    });
    // Members that joined before (an upgrade's adoption can) are this node's from the start.
    for (const room of d.rooms.roomNames()) for (const id of d.rooms.memberIds(room)) cluster.view.localJoined(room, id);
    d.rooms.listener = cluster;
    d.rooms.membersOf = (room) => cluster.members(room);
    this.#cluster = cluster;
    await cluster.start();
  }

  /** An upgrade hands this process's connections over: see ClusterPresence.freeze. */
  freeze(): void {
    this.#cluster?.freeze();
  }

  status(): (PresenceStatus & { events: PresenceEvents['counters'] }) | undefined {
    return this.#cluster && { ...this.#cluster.status(), events: { ...this.events.counters } };
  }

  /** Delete this node's record (its members leave on the other nodes at once) and stop. Idempotent. */
  async close(): Promise<void> {
    this.#deps.rooms.listener = undefined;
    this.#deps.rooms.membersOf = undefined;
    this.events.close();
    await this.#cluster?.close();
  }
}
