/**
 * Where sessions live between connections, and across a restart of the host process. The session layer writes every
 * change through `write()` before it acts on it (a message is stored before it is sent), so a store that keeps its
 * writes keeps every session resumable.
 *
 * Two stores ship: {@link MemorySessionStore} (the default; survives reconnects, not a restart) and
 * {@link FileSessionStore} (one machine; survives kill -9). A fleet store (NATS KV, cluster issue) implements the
 * same interface: `write` may return a promise, and the session layer then sends only once it resolves.
 */

/** One unacknowledged server→client message: its sequence number and payload (binary kept as bytes). */
export type StoredMessage = [seq: number, data: string | Uint8Array];

/** Everything needed to resume a session, in this process or the next one. */
export interface SessionRecord {
  id: string;
  /** Last client→server seq the plugin has handled (the server's cumulative ack). */
  inSeq: number;
  /** Last server→client seq assigned. */
  outSeq: number;
  /** Unacknowledged server→client messages, oldest first, at most `maxReplay` of them. */
  out: StoredMessage[];
  /** `conn.state` as JSON, or undefined before the plugin set it. */
  state: string | undefined;
  /** The `conn.id` of the session's connection, kept when it resumes in another process. Absent from older stores. */
  connId?: string;
  /** Wall-clock ms of the last write: a session untouched for longer than its TTL is expired. */
  touchedAt: number;
  /** Its TTL ran out while its client was away: a resume reports HOTLINE_E_SESSION_EXPIRED. */
  expired?: boolean;
  /** The generation of the one resume token that is valid now (issue 9 item 7); absent in records from before: 0. */
  gen?: number;
  /** The client has spoken since `gen` was issued, so it has that token: the one before it is refused outright. */
  genConfirmed?: boolean;
  /**
   * issue 11, poison messages: the client seq a session restored from the store began handling first (the message a
   * worker death left unhandled, replayed). Still `inSeq + 1` at the next restore: a worker died with it in flight
   * again, and it is dropped (HOTLINE_E_POISON_MESSAGE). Absent from older stores.
   */
  suspect?: number;
  /**
   * The rooms the session's connection is in, in join order (issue 13), joined again when the session is restored
   * from the store. Bounded as joins are (src/rooms/room-name.ts). Absent from older stores, and when in none.
   */
  rooms?: string[];
}

/** A change to one session. Fields absent are unchanged. */
export interface SessionChange {
  /** Create the session (the other fields then start from zero). */
  create?: true;
  /** The id of the session's connection: set at create, or by a restore that had to give it a new one. */
  connId?: string;
  inSeq?: number;
  /** Restore the last assigned seq when no message is buffered (compaction). */
  outSeq?: number;
  /** A new server→client message, appended after the others. */
  out?: StoredMessage;
  /** The client acknowledged every seq <= acked: drop them. */
  acked?: number;
  state?: string;
  expired?: true;
  /** A resume rotated the token to this generation. */
  gen?: number;
  genConfirmed?: boolean;
  /** A restored session is about to hand this replayed message to the plugin (SessionRecord.suspect). */
  suspect?: number;
  /** The connection's rooms now, all of them (a join or a leave rewrites the list). */
  rooms?: string[];
  touchedAt: number;
}

/** A pluggable session store. Methods may be synchronous or return promises. */
export interface SessionStore {
  /** Unacknowledged messages kept per session (the session layer bounds its own buffer to match). */
  readonly maxReplay?: number;
  /** The HMAC key resume tokens are signed with. Stable across restarts for a durable store. */
  secret(): Uint8Array | Promise<Uint8Array>;
  get(id: string): SessionRecord | undefined | Promise<SessionRecord | undefined>;
  /** Apply a change. Durable to the store's standard once it returns (or its promise resolves). */
  write(id: string, change: SessionChange): void | Promise<void>;
  delete(id: string): void | Promise<void>;
  /** Drop sessions untouched since `before` (ms). Called periodically by the session layer. */
  expire?(before: number): void | Promise<void>;
  close(): void | Promise<void>;
  /**
   * A shared store (NATS, issue 13) tells the session layer when another node took one of its sessions over outside
   * a write (HOTLINE_E_SESSION_CONFLICT): this node then closes its copy.
   */
  onLost?(fn: (id: string, err: Error) => void): void;
  /** What `hotline status` shows of the store: its kind and, for a remote one, whether it is reachable now. */
  status?(): SessionStoreStatus;
}

/** A store's own report: `store` names its kind; `state` is `up` or `degraded` for one behind a network. */
export interface SessionStoreStatus {
  store: string;
  state?: string;
  [detail: string]: unknown;
}

/** Options shared by the stores. */
export interface StoreOptions {
  /** Unacknowledged messages kept per session; older ones are dropped and a resume that needs them fails with HOTLINE_E_SESSION_OVERFLOW. Default 1 000. */
  maxReplay?: number;
}

export const DEFAULT_MAX_REPLAY = 1000;

/** Apply a change to a record in place (creating it when asked), bounding the replay buffer. Shared by the stores. */
export function applyChange(records: Map<string, SessionRecord>, id: string, c: SessionChange, maxReplay: number): void {
  let r = records.get(id);
  if (c.create) {
    r = { id, inSeq: 0, outSeq: 0, out: [], state: undefined, touchedAt: c.touchedAt, gen: 0, genConfirmed: false };
    records.set(id, r);
  }
  if (!r) return;
  r.touchedAt = c.touchedAt;
  if (c.inSeq !== undefined) r.inSeq = c.inSeq;
  if (c.outSeq !== undefined) r.outSeq = c.outSeq;
  if (c.state !== undefined) r.state = c.state;
  if (c.connId !== undefined) r.connId = c.connId;
  if (c.expired) r.expired = true;
  if (c.gen !== undefined) r.gen = c.gen;
  if (c.genConfirmed !== undefined) r.genConfirmed = c.genConfirmed;
  if (c.suspect !== undefined) r.suspect = c.suspect;
  if (c.rooms !== undefined) r.rooms = c.rooms;
  if (c.acked !== undefined) {
    let n = 0;
    while (n < r.out.length && r.out[n]![0] <= c.acked) n++;
    if (n > 0) r.out.splice(0, n);
  }
  if (c.out) {
    r.outSeq = c.out[0];
    r.out.push(c.out);
    // Dropping is safe only because resume checks for the gap and reports HOTLINE_E_SESSION_OVERFLOW.
    if (r.out.length > maxReplay) r.out.splice(0, r.out.length - maxReplay);
  }
}
