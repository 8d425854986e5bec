/**
 * Sessions in a NATS JetStream KV bucket shared by every node, so a client whose node died resumes on any other.
 *
 * Ownership: each record names the node (and the random epoch of that node's process) that wrote it last, and every
 * write is a compare-and-set on the revision this node last saw (`kv.update(key, value, revision)`). A node that
 * restores a session from the bucket takes it over with its first write; of two nodes racing for one session, the
 * server lets exactly one CAS through. The other's write fails (10071, wrong last sequence), and that node closes its
 * copy (HOTLINE_E_SESSION_CONFLICT). A node whose session is taken over is also told at once on a subject of its
 * epoch, and closes its copy then instead of at its next write.
 *
 * Writes of one session never overlap: while one is in flight, the changes after it are applied to the node's copy
 * and the next write carries all of them (a group commit), so a busy session costs one round trip per batch, not per
 * message.
 *
 * NATS unreachable (the link is degraded): a write of a session this node owns is kept in its copy, marked dirty,
 * and counted (`deferredWrites`), and the session goes on serving on this node; the dirty records are written back
 * when the link is up again (by CAS: a session taken over meanwhile is closed here). If this node dies during the
 * outage, those clients resume from the last record that reached the bucket, and the ones that had received more
 * get a lost-session (HOTLINE_E_SESSION_PROTOCOL). A read, or a takeover, needs NATS now: it fails at once with
 * HOTLINE_E_CLUSTER_UNAVAILABLE, and the client retries with its backoff.
 *
 * Expiry: the bucket's `max_age` (`maxAge`, default 3 × the session TTL when the host creates the store). The session
 * layer rewrites connected sessions at least every TTL/2, so only sessions nobody holds age out. NATS 2.9 ignores
 * per-key TTLs, so none is used.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { jetstream } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import type { Subscription } from '@nats-io/transport-node';
import { HotlineError, messageOf } from '../errors.js';
import { applyChange, DEFAULT_MAX_REPLAY, type SessionChange, type SessionRecord, type SessionStore, type SessionStoreStatus, type StoreOptions } from '../session/store.js';
import { NatsLink, type NatsLinkOptions, type NatsLinkState } from './nats-connection.js';
import { decodeRecord, encodeRecord, isSessionKey, type RecordOwner } from './session-record-codec.js';

export interface NatsSessionStoreOptions extends StoreOptions, Partial<Pick<NatsLinkOptions, 'atStart' | 'waitTimeout' | 'connectTimeout'>> {
  /** NATS server URLs. Either this or `link`. */
  servers?: string | string[];
  /** A connection the node already has (shared with the cluster bus); the store does not close it. */
  link?: NatsLink;
  /** The KV bucket. Default `hotline_sessions`; the resume-token secret lives in `<bucket>_meta`. */
  bucket?: string;
  /** The bucket's max_age, in ms: records untouched this long are removed by the server. Default 180 000. */
  maxAge?: number;
  /** This node's name in the records it owns. Default `<hostname>-<pid>`. */
  node?: string;
  /** Largest record, in bytes (the bucket's max value size too). Default 512 KiB; must stay under NATS' max_payload. */
  maxRecordBytes?: number;
  /** One KV operation's timeout, in ms. Default 2 000. */
  timeout?: number;
  /** The resume-token HMAC key, the same on every node. Default: made by the first node in `<bucket>_meta`. */
  secret?: Uint8Array;
}

/** What `status()` reports. */
export interface NatsSessionStoreStatus extends SessionStoreStatus {
  store: 'nats';
  state: NatsLinkState | 'opening';
  bucket: string;
  node: string;
  epoch: string;
  /** Sessions this node owns in the bucket. */
  owned: number;
  /** Owned sessions with changes not in the bucket yet (written back when NATS is up). */
  dirty: number;
  /** Writes kept locally because NATS was unreachable, since start. */
  deferredWrites: number;
  /** Sessions this node lost to another node's takeover, since start. */
  conflicts: number;
  /** Records refused as malformed, since start. */
  refusedRecords: number;
}

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

/** This node's copy of one session, and where it stands with the bucket. */
interface Held {
  rec: SessionRecord;
  /** The revision this node last wrote or read; 0 when the key does not exist yet (a new session). */
  rev: number;
  /** This node's CAS succeeded at `rev`: it owns the session. False after a read, until the takeover write. */
  owned: boolean;
  /** The epoch of the node that owned it when it was read: told when this node takes it over. */
  prevEpoch: string | undefined;
  readAt: number;
  /** The write in flight, if one is. */
  flushing: Promise<void> | undefined;
  /** Writes waiting for the next flush. */
  waiters: Waiter[];
  dirty: boolean;
}

type LostListener = (id: string, err: HotlineError) => void;

/** Records read and not taken over are forgotten after this long (a refused token, a client that went away). */
const UNOWNED_KEEP_MS = 30_000;
const UNOWNED_MAX = 10_000;

/**
 * A {@link SessionStore} in a NATS JetStream KV bucket, shared by every node of a cluster.
 *
 * @example
 * import { createHost } from 'hotline';
 * // On every node (the host creates the store, and closes it):
 * const host = await createHost({ plugin: './plugin.ts', sessions: { store: 'nats', servers: 'nats://127.0.0.1:4222' } });
 */
export class NatsSessionStore implements SessionStore {
  readonly maxReplay: number;
  readonly bucket: string;
  readonly node: string;
  readonly epoch = randomBytes(6).toString('hex');
  #o: NatsSessionStoreOptions;
  #maxBytes: number;
  #timeout: number;
  #link: NatsLink | undefined;
  #ownLink: boolean;
  #kv: KV | undefined;
  #secret: Uint8Array | undefined;
  #opening: Promise<Uint8Array> | undefined;
  #held = new Map<string, Held>();
  #lost: LostListener | undefined;
  #sub: Subscription | undefined;
  #offState: (() => void) | undefined;
  #deferred = 0;
  #conflicts = 0;
  #refused = 0;
  #closed = false;

  constructor(options: NatsSessionStoreOptions) {
    if (!options.link && !options.servers) throw new HotlineError('HOTLINE_E_CONFIG', 'the NATS session store needs servers (e.g. nats://127.0.0.1:4222) or a link');
    this.#o = options;
    this.maxReplay = options.maxReplay ?? DEFAULT_MAX_REPLAY;
    this.bucket = options.bucket ?? 'hotline_sessions';
    if (!/^[A-Za-z0-9_-]{1,200}$/.test(this.bucket)) throw new HotlineError('HOTLINE_E_CONFIG', `NATS bucket name ${JSON.stringify(this.bucket)}: letters, digits, - and _ only`);
    this.node = options.node ?? `${os.hostname()}-${process.pid}`;
    this.#maxBytes = options.maxRecordBytes ?? 512 * 1024;
    this.#timeout = options.timeout ?? 2_000;
    this.#link = options.link;
    this.#ownLink = options.link === undefined;
  }

  /** The connection, once open. */
  get link(): NatsLink | undefined {
    return this.#link;
  }

  /**
   * Connect (unless given a link), open the buckets and read the shared token secret (the first node creates it).
   * Called by the session layer at start; idempotent. Rejects with HOTLINE_E_CLUSTER_UNAVAILABLE when NATS is down.
   */
  secret(): Promise<Uint8Array> {
    if (this.#secret) return Promise.resolve(this.#secret);
    this.#opening ??= this.#open().catch(async (err: unknown) => {
      this.#opening = undefined;
      if (this.#ownLink) await this.#link?.close();
      if (this.#ownLink) this.#link = undefined;
      throw err;
    });
    return this.#opening;
  }

  /** Who the session layer tells when a session is taken over outside one of its writes. */
  onLost(fn: LostListener): void {
    this.#lost = fn;
  }

  status(): NatsSessionStoreStatus {
    let owned = 0;
    let dirty = 0;
    for (const h of this.#held.values()) {
      if (h.owned) owned++;
      if (h.dirty) dirty++;
    }
    return {
      store: 'nats',
      state: this.#link?.state ?? 'opening',
      bucket: this.bucket,
      node: this.node,
      epoch: this.epoch,
      owned,
      dirty,
      deferredWrites: this.#deferred,
      conflicts: this.#conflicts,
      refusedRecords: this.#refused,
    };
  }

  async get(id: string): Promise<SessionRecord | undefined> {
    const kv = this.#ready();
    if (!isSessionKey(id)) return undefined;
    this.#needUp('read session');
    let e;
    try {
      e = await kv.get(id);
    } catch (err) {
      throw this.#unavailable('read session', err);
    }
    if (!e || e.operation !== 'PUT') {
      this.#held.delete(id);
      return undefined;
    }
    let decoded;
    try {
      decoded = decodeRecord(id, e.value, this.#maxBytes, this.maxReplay);
    } catch (err) {
      this.#refused++;
      throw err;
    }
    this.#forgetUnowned();
    // A record this very process wrote is still its own (a session it ended and was asked for again).
    const own = decoded.owner.epoch === this.epoch;
    this.#held.set(id, { rec: decoded.record, rev: e.revision, owned: own, prevEpoch: own ? undefined : decoded.owner.epoch, readAt: Date.now(), flushing: undefined, waiters: [], dirty: false });
    return copy(decoded.record);
  }

  write(id: string, change: SessionChange): void | Promise<void> {
    this.#ready();
    let h = this.#held.get(id);
    if (change.create) {
      if (!isSessionKey(id)) throw new HotlineError('HOTLINE_E_SESSION_STORE', `session id ${JSON.stringify(id)} cannot be a NATS key`);
      const m = new Map<string, SessionRecord>();
      applyChange(m, id, change, this.maxReplay);
      h = { rec: m.get(id)!, rev: 0, owned: true, prevEpoch: undefined, readAt: Date.now(), flushing: undefined, waiters: [], dirty: false };
      this.#held.set(id, h);
    } else {
      if (!h) return Promise.reject(this.#conflict(id, 'this node does not hold it (taken over by another node, or never read)'));
      applyChange(new Map([[id, h.rec]]), id, change, this.maxReplay);
    }
    // A takeover must be decided by the bucket now; a session this node owns goes on while NATS is away.
    if (h.owned && this.#link!.state !== 'up') {
      h.dirty = true;
      this.#deferred++;
      return;
    }
    return new Promise<void>((resolve, reject) => {
      h.waiters.push({ resolve, reject });
      if (!h.flushing) this.#flush(id, h);
    });
  }

  async delete(id: string): Promise<void> {
    const h = this.#held.get(id);
    if (!h) return;
    this.#held.delete(id);
    // Only what this node owns: a record another node took over is theirs to delete.
    if (!h.owned || this.#closed) return;
    await h.flushing;
    if (h.rev === 0 || this.#link?.state !== 'up') return; // never written, or NATS away: max_age removes it
    await this.#kv!.delete(id, { previousSeq: h.rev }).catch((err: unknown) => {
      if ((err as { code?: unknown }).code === 10071) return; // written since by another node: no longer ours
      throw this.#unavailable('delete session', err);
    });
  }

  /** Records in the bucket age out by max_age; here only the copies read and never taken over are forgotten. */
  expire(): void {
    this.#forgetUnowned(true);
  }

  /** Wait (bounded by the op timeout) for writes in flight, then close the connection if the store opened it. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#offState?.();
    this.#sub?.unsubscribe();
    await Promise.all([...this.#held.values()].map((h) => h.flushing));
    this.#held.clear();
    if (this.#ownLink) await this.#link?.close();
  }

  async #open(): Promise<Uint8Array> {
    const o = this.#o;
    this.#link ??= await NatsLink.open({ servers: o.servers!, name: `hotline ${this.node}`, atStart: o.atStart, waitTimeout: o.waitTimeout, connectTimeout: o.connectTimeout });
    const kvm = new Kvm(jetstream(this.#link.nc, { timeout: this.#timeout }));
    let secret: Uint8Array;
    try {
      this.#kv = await kvm.create(this.bucket, { history: 1, ttl: o.maxAge ?? 180_000, maxValueSize: this.#maxBytes });
      secret = await this.#sharedSecret(await kvm.create(`${this.bucket}_meta`, { history: 1 }));
    } catch (err) {
      if (err instanceof HotlineError) throw err;
      throw new HotlineError('HOTLINE_E_CLUSTER_UNAVAILABLE', `cannot open the NATS KV bucket ${this.bucket} (JetStream on? -js): ${messageOf(err)}`, { cause: err });
    }
    this.#sub = this.#link.nc.subscribe(this.#takenSubject(this.epoch), { callback: (err, msg) => void (err === null && this.#takenNotice(msg.data)) });
    this.#offState = this.#link.onState((s) => s === 'up' && this.#writeBack());
    this.#secret = secret;
    return secret;
  }

  /** The HMAC key every node signs resume tokens with: created once by the first node, read by the others. */
  async #sharedSecret(meta: KV): Promise<Uint8Array> {
    if (this.#o.secret) return this.#o.secret;
    const fresh = randomBytes(32).toString('hex');
    await meta.create('secret', fresh).catch((err: unknown) => {
      if ((err as { code?: unknown }).code !== 10071) throw err; // another node created it first: read theirs
    });
    const e = await meta.get('secret');
    const text = e?.operation === 'PUT' && e.length <= 64 ? new TextDecoder().decode(e.value) : '';
    if (!/^[0-9a-f]{64}$/.test(text)) throw new HotlineError('HOTLINE_E_SESSION_RECORD', `the token secret in ${this.bucket}_meta is not 32 bytes of hex; delete the key "secret" there to have a new one made`);
    return Buffer.from(text, 'hex');
  }

  /** Write `h` to the bucket by CAS, with every change made until now; again while more arrived meanwhile. */
  #flush(id: string, h: Held): void {
    h.flushing = (async () => {
      while (h.waiters.length > 0 && !this.#closed) {
        const waiters = h.waiters;
        h.waiters = [];
        try {
          await this.#cas(id, h);
          for (const w of waiters) w.resolve();
        } catch (err) {
          for (const w of waiters) w.reject(err);
          for (const w of h.waiters.splice(0)) w.reject(err);
        }
      }
      for (const w of h.waiters.splice(0)) w.reject(new HotlineError('HOTLINE_E_SESSION_STORE', 'the NATS session store is closed'));
      h.flushing = undefined;
    })();
  }

  async #cas(id: string, h: Held): Promise<void> {
    const bytes = encodeRecord(h.rec, { node: this.node, epoch: this.epoch });
    if (bytes.byteLength > this.#maxBytes) {
      throw new HotlineError('HOTLINE_E_SESSION_RECORD', `session ${id}: its record is ${bytes.byteLength} bytes, over maxRecordBytes ${this.#maxBytes} (a large conn.state or replay buffer); not stored`);
    }
    const kv = this.#kv!;
    for (let attempt = 0; ; attempt++) {
      try {
        const wasOwned = h.owned;
        h.rev = h.rev === 0 ? await kv.create(id, bytes) : await kv.update(id, bytes, h.rev, this.#timeout);
        h.owned = true;
        h.dirty = false;
        if (!wasOwned && h.prevEpoch) this.#link!.nc.publish(this.#takenSubject(h.prevEpoch), id);
        return;
      } catch (err) {
        if ((err as { code?: unknown }).code !== 10071) {
          if (!h.owned) {
            this.#held.delete(id);
            throw this.#unavailable('take the session over', err);
          }
          h.dirty = true;
          throw this.#unavailable('write session', err);
        }
        // Wrong last sequence. Our own write whose reply was lost (a timeout) looks the same: check who wrote it.
        const mine = attempt === 0 && (await this.#ownerOf(id, h));
        if (!mine) throw this.#conflict(id, 'another node wrote it since this node last did');
      }
    }
  }

  /** True when the bucket's record of `id` was written by this very process; `h.rev` is then brought up to it. */
  async #ownerOf(id: string, h: Held): Promise<boolean> {
    if (!h.owned) return false;
    const e = await this.#kv!.get(id).catch(() => null);
    if (!e || e.operation !== 'PUT') return false;
    let owner: RecordOwner;
    try {
      owner = decodeRecord(id, e.value, this.#maxBytes, this.maxReplay).owner;
    } catch {
      return false;
    }
    if (owner.epoch !== this.epoch) return false;
    h.rev = e.revision;
    return true;
  }

  /** NATS is back: write every dirty session, by CAS; one taken over meanwhile is closed here. */
  #writeBack(): void {
    for (const [id, h] of this.#held) {
      if (!h.dirty || !h.owned) continue;
      const p = new Promise<void>((resolve, reject) => h.waiters.push({ resolve, reject }));
      if (!h.flushing) this.#flush(id, h);
      p.catch((err: unknown) => {
        if (err instanceof HotlineError && err.code === 'HOTLINE_E_SESSION_CONFLICT') this.#lost?.(id, err);
      });
    }
  }

  /** Another node says it took over `data` (a session id) from this process: check the bucket, then let it go. */
  #takenNotice(data: Uint8Array): void {
    if (data.byteLength > 64) return;
    const id = new TextDecoder().decode(data);
    const h = this.#held.get(id);
    if (!h?.owned || !isSessionKey(id)) return;
    // Checked, not trusted: anything on NATS can publish this subject.
    void this.#kv!.get(id).then(
      (e) => {
        if (!e || e.operation !== 'PUT' || e.revision === h.rev || this.#held.get(id) !== h) return;
        let epoch: string;
        try {
          epoch = decodeRecord(id, e.value, this.#maxBytes, this.maxReplay).owner.epoch;
        } catch {
          return;
        }
        if (epoch !== this.epoch) this.#lost?.(id, this.#conflict(id, `taken over by another node (revision ${e.revision})`));
      },
      () => undefined,
    );
  }

  #takenSubject(epoch: string): string {
    return `_hotline.sessions.${this.bucket}.taken.${epoch}`;
  }

  #conflict(id: string, why: string): HotlineError {
    // Counted once per session lost: a write after the loss is refused the same way, and not counted again.
    if (this.#held.delete(id)) this.#conflicts++;
    return new HotlineError('HOTLINE_E_SESSION_CONFLICT', `session ${id}: ${why}; this node's copy is closed`);
  }

  #unavailable(what: string, err: unknown): HotlineError {
    if (err instanceof HotlineError) return err;
    return new HotlineError('HOTLINE_E_CLUSTER_UNAVAILABLE', `cannot ${what}: NATS did not answer (${messageOf(err)})`, { cause: err });
  }

  #needUp(what: string): void {
    if (this.#link!.state !== 'up') throw new HotlineError('HOTLINE_E_CLUSTER_UNAVAILABLE', `cannot ${what}: NATS is unreachable (the link is ${this.#link!.state})`);
  }

  #ready(): KV {
    if (this.#closed) throw new HotlineError('HOTLINE_E_SESSION_STORE', 'the NATS session store is closed');
    if (!this.#kv) throw new HotlineError('HOTLINE_E_SESSION_STORE', 'the NATS session store is not open yet (secret() opens it)');
    return this.#kv;
  }

  #forgetUnowned(byAge = false): void {
    let unowned = 0;
    for (const h of this.#held.values()) if (!h.owned) unowned++;
    if (!byAge && unowned < UNOWNED_MAX) return;
    const before = Date.now() - UNOWNED_KEEP_MS;
    for (const [id, h] of this.#held) {
      if (h.owned || h.flushing) continue;
      if (unowned >= UNOWNED_MAX || h.readAt < before) {
        this.#held.delete(id);
        unowned--;
      }
    }
  }
}

function copy(r: SessionRecord): SessionRecord {
  return { ...r, out: r.out.slice() };
}
