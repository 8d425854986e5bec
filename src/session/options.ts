/**
 * Session and send-away options of a host, with their defaults (documented in docs/client.md).
 */
import { HotlineError } from '../errors.js';
import { MemorySessionStore } from './memory-store.js';
import type { SessionStore } from './store.js';

export interface SessionOptions {
  /**
   * Where sessions are kept. Default: a {@link MemorySessionStore} owned (and closed) by the host. `'nats'`: a
   * NatsSessionStore on `servers`, shared by every node (issue 13), created and closed by the host.
   */
  store?: SessionStore | 'nats';
  /** With `store: 'nats'`: the NATS server URLs, e.g. `nats://127.0.0.1:4222`. */
  servers?: string | string[];
  /** With `store: 'nats'`: the KV bucket. Default `hotline_sessions`. */
  bucket?: string;
  /** With `store: 'nats'`: NATS unreachable at start fails (`'fail'`, default) or waits up to `waitTimeout` (`'wait'`). */
  atStart?: 'fail' | 'wait';
  /** With `store: 'nats'` and `atStart: 'wait'`: ms to wait for NATS at start. Default 60 000. */
  waitTimeout?: number;
  /** With `store: 'nats'`: this node's name in the records it owns. Default `<hostname>-<pid>`. */
  node?: string;
  /** How long a disconnected session waits for its client, in ms. Default 60 000. */
  ttl?: number;
  /** How often acks are flushed, in ms. Default 20. */
  ackInterval?: number;
  /** The delay suggested to clients in the reconnect hint at shutdown, in ms. Default 1 000. */
  reconnectDelay?: number;
  /**
   * Sessions waiting for their client at most; one more evicts the one detached longest (HOTLINE_E_SESSION_EVICTED).
   * Default 10 000. Detached sessions do not count against `limits.maxConnections`, so this is their bound.
   */
  maxDetached?: number;
}

export interface ResolvedSessionOptions {
  store: SessionStore;
  /** True when the host created the store and so closes it. */
  ownStore: boolean;
  ttl: number;
  ackInterval: number;
  reconnectDelay: number;
  maxDetached: number;
}

/** How close() sends clients away: `batchSize` connections every `interval` ms (the Phoenix drainer's idea). */
export interface SendAwayOptions {
  /** Connections closed per batch. Default 1 000. */
  batchSize?: number;
  /** Pause between batches, in ms. Default 250. */
  interval?: number;
}

/** Default bound on detached sessions: as many as the default `maxConnections`, so a full host can lose every socket at once and still resume them all. */
export const DEFAULT_MAX_DETACHED = 10_000;

/** @deprecated Since 0.2: the old name of SendAwayOptions. */
export type DrainOptions = SendAwayOptions;

export const DEFAULT_SEND_AWAY: Required<SendAwayOptions> = { batchSize: 1000, interval: 250 };

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new HotlineError('HOTLINE_E_CONFIG', `${name} must be a positive number, got ${String(value)}`);
  }
  return value;
}

/**
 * `made`: the store the host built for a named kind (`'nats'`, in host/, which may import the cluster folder); the
 * host owns it.
 */
export function resolveSessionOptions(o: boolean | SessionOptions | undefined, made?: (s: SessionOptions, ttl: number) => SessionStore): ResolvedSessionOptions | false {
  if (!o) return false;
  const s = o === true ? {} : o;
  const ttl = positive('sessions.ttl', s.ttl, 60_000);
  if (s.store === 'nats' && !made) throw new HotlineError('HOTLINE_E_CONFIG', "sessions.store 'nats' needs the host to create it");
  const store = s.store === 'nats' ? made!(s, ttl) : s.store;
  if (store !== undefined && (typeof store !== 'object' || store === null)) throw new HotlineError('HOTLINE_E_CONFIG', `sessions.store must be a SessionStore or 'nats', got ${JSON.stringify(s.store)}`);
  return {
    store: store ?? new MemorySessionStore(),
    ownStore: s.store === undefined || s.store === 'nats',
    ttl,
    ackInterval: positive('sessions.ackInterval', s.ackInterval, 20),
    reconnectDelay: positive('sessions.reconnectDelay', s.reconnectDelay, 1_000),
    maxDetached: Math.floor(positive('sessions.maxDetached', s.maxDetached, DEFAULT_MAX_DETACHED)),
  };
}

export function resolveSendAwayOptions(o: SendAwayOptions | undefined): Required<SendAwayOptions> {
  return {
    batchSize: Math.floor(positive('sendAway.batchSize', o?.batchSize, DEFAULT_SEND_AWAY.batchSize)),
    interval: positive('sendAway.interval', o?.interval, DEFAULT_SEND_AWAY.interval),
  };
}
