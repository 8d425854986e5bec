/**
 * The options of presence across nodes (issue 13), their defaults, and their validation. The defaults and the bound
 * they give are in docs/cluster.md, "Presence".
 */
import { HotlineError } from '../errors.js';

export interface PresenceOptions {
  /** The JetStream KV bucket every node shares. Default `hotline_presence`. */
  bucket?: string;
  /** How often a node rewrites its record (its heartbeat), in ms. Default 1 000. */
  heartbeat?: number;
  /** A node not heard for this many ms is removed everywhere, its members leaving. Default 3 × heartbeat. */
  expireAfter?: number;
  /** The bucket's max_age, in ms: the backstop for records nobody rewrites or deletes. Default 60 000. */
  maxAge?: number;
  /** Rooms one node publishes at most; more make its record incomplete (HOTLINE_E_PRESENCE_LIMIT). Default 10 000. */
  maxRooms?: number;
  /** Members (room memberships) one node publishes at most, over all its rooms. Default 100 000. */
  maxMembers?: number;
  /** Largest record, written or read, in bytes (the bucket's max value size too). Default 900 KiB, under NATS' 1 MiB max_payload. */
  maxRecordBytes?: number;
  /** Nodes a node keeps track of at most; records of more are refused (HOTLINE_E_PRESENCE_RECORD). Default 256. */
  maxPeers?: number;
  /** onPresence events waiting for their handler at most; more are dropped and counted. Default 10 000. */
  maxQueuedEvents?: number;
  /** One KV operation's timeout, in ms. Default 2 000. */
  timeout?: number;
}

export type ResolvedPresenceOptions = Required<PresenceOptions>;

function positiveInt(name: string, v: number | undefined, fallback: number, min = 1): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new HotlineError('HOTLINE_E_CONFIG', `cluster.presence.${name} must be an integer ≥ ${min}, got ${String(v)}`);
  return v;
}

export function resolvePresenceOptions(o: PresenceOptions | undefined): ResolvedPresenceOptions {
  const p = o ?? {};
  const bucket = p.bucket ?? 'hotline_presence';
  if (typeof bucket !== 'string' || !/^[A-Za-z0-9_-]{1,200}$/.test(bucket)) throw new HotlineError('HOTLINE_E_CONFIG', `cluster.presence.bucket ${JSON.stringify(bucket)}: letters, digits, - and _ only`);
  const heartbeat = positiveInt('heartbeat', p.heartbeat, 1_000, 20);
  const expireAfter = positiveInt('expireAfter', p.expireAfter, 3 * heartbeat, 1);
  // Two missed heartbeats at least: one late write must never remove a live node.
  if (expireAfter < 2 * heartbeat) throw new HotlineError('HOTLINE_E_CONFIG', `cluster.presence.expireAfter (${expireAfter}) must be at least 2 × heartbeat (${heartbeat})`);
  const maxAge = positiveInt('maxAge', p.maxAge, Math.max(60_000, 10 * expireAfter), 1);
  if (maxAge <= expireAfter) throw new HotlineError('HOTLINE_E_CONFIG', `cluster.presence.maxAge (${maxAge}) must be more than expireAfter (${expireAfter})`);
  return {
    bucket,
    heartbeat,
    expireAfter,
    maxAge,
    maxRooms: positiveInt('maxRooms', p.maxRooms, 10_000),
    maxMembers: positiveInt('maxMembers', p.maxMembers, 100_000),
    maxRecordBytes: positiveInt('maxRecordBytes', p.maxRecordBytes, 900 * 1024, 1024),
    maxPeers: positiveInt('maxPeers', p.maxPeers, 256),
    maxQueuedEvents: positiveInt('maxQueuedEvents', p.maxQueuedEvents, 10_000),
    timeout: positiveInt('timeout', p.timeout, 2_000),
  };
}
