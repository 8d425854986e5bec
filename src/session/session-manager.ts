/**
 * The session layer of a host: takes each WebSocket that chose the `hotline.v1` subprotocol, reads its hello, and
 * creates, resumes (in this process) or restores (from the store, after a restart) its session. Then it owns the
 * timers every session shares: ack flushing, TTL expiry, keeping connected sessions fresh in the store.
 *
 * Two bounds against a client that opens sessions and drops them (issue 9 item 6): a detached session keeps its
 * Connection open for the plugin, so the host counts it apart from live sockets (`detachedCount`), and at most
 * `maxDetached` of them wait for their client; one more evicts the oldest (HOTLINE_E_SESSION_EVICTED).
 *
 * Every resume rotates the token (issue 9 item 7): the welcome carries the next generation and the store keeps it,
 * so a token replayed after its holder resumed is refused. See {@link SessionManager.tokenRefusal} for the one
 * exception, a welcome that never reached its client.
 */
import type { WebSocket } from 'ws';
import { CLOSE_INTERNAL_ERROR, CLOSE_POLICY, CLOSE_PROTOCOL_ERROR, CLOSE_SERVICE_RESTART, CLOSE_TRY_AGAIN_LATER, POLICY_CLOSE_GRACE_MS } from '../connection/close-codes.js';
import { isConnectionId, newConnectionId } from '../connection/conn-id.js';
import { Connection, type ConnectionOptions } from '../connection/connection.js';
import type { Dispatcher } from '../connection/dispatcher.js';
import { isThenable } from '../connection/thenable.js';
import { HotlineError, messageOf } from '../errors.js';
import { roomListProblem } from '../rooms/room-name.js';
import { EarlyFrames } from './early-frames.js';
import type { ResolvedSessionOptions } from './options.js';
import { decodeFrame, type LostCode, type ReceivedFrame, type WelcomeFrame } from './protocol.js';
import { checkResume, ServerSession, type SessionHost } from './session.js';
import type { SessionChange } from './store.js';
import { DEFAULT_MAX_REPLAY } from './store.js';
import { issueToken, newSessionId, type TokenClaim, verifyToken } from './token.js';

export interface SessionManagerDeps {
  dispatcher: Dispatcher;
  options: ResolvedSessionOptions;
  /** How long a client has to send its hello, in ms. */
  helloTimeout: number;
  reportError(err: HotlineError, conn?: Connection): void;
  /**
   * This process replaces one that died (issue 11, poison messages): a restored session marks its first message
   * before handling it. Default false: after a graceful hand-over (an upgrade, a restart) nothing died.
   */
  markReplays?: boolean;
  /** A client asked to resume and could not: it gets a new session and a lost-session with this code. */
  sessionLost?(code: LostCode): void;
  /** A client resumed its session (in this process, or restored from the store): issue 14's resume counter. */
  sessionResumed?(): void;
  /** Run a hello's handling in its turn (src/transport/handshake-pacer.ts); false: refused, the backlog is full. */
  pace(run: () => void): boolean;
}

const LOST_MESSAGES: Record<LostCode, string> = {
  HOTLINE_E_SESSION_EXPIRED: 'the session expired',
  HOTLINE_E_SESSION_UNKNOWN: 'no such session (expired long ago, or kept in another store)',
  HOTLINE_E_SESSION_TOKEN: 'the resume token is invalid, or was already used to resume (tokens are rotated at every resume)',
  HOTLINE_E_SESSION_OVERFLOW: 'the replay buffer overflowed: messages this client missed were dropped',
  HOTLINE_E_SESSION_PROTOCOL: 'the client claims messages this session never sent',
};

export class SessionManager implements SessionHost {
  readonly reconnectDelay: number;
  readonly maxReplay: number;
  readonly markReplays: boolean;
  #deps: SessionManagerDeps;
  #o: ResolvedSessionOptions;
  #sessions = new Map<string, ServerSession>();
  /** Sessions waiting for their client, oldest detach first (a Set keeps insertion order): the eviction order. */
  #detached = new Set<ServerSession>();
  /** hotline.v1 sockets whose hello has not been handled yet: live sockets with no Connection so far. */
  #pendingHellos = 0;
  #evicted = 0;
  #poisonDropped = 0;
  #ackDue = new Set<ServerSession>();
  #secret: Uint8Array | undefined;
  #sendingAway = false;
  #closed = false;
  #ackTimer: NodeJS.Timeout | undefined;
  #sweepTimer: NodeJS.Timeout | undefined;

  constructor(deps: SessionManagerDeps) {
    this.#deps = deps;
    this.#o = deps.options;
    this.reconnectDelay = deps.options.reconnectDelay;
    this.maxReplay = deps.options.store.maxReplay ?? DEFAULT_MAX_REPLAY;
    this.markReplays = deps.markReplays === true;
  }

  /** Sessions alive in this process (attached or waiting for their client). */
  get size(): number {
    return this.#sessions.size;
  }

  /** Sessions whose client is away. Their Connections are open for the plugin but hold no socket. */
  get detachedCount(): number {
    return this.#detached.size;
  }

  /** Sockets that chose hotline.v1 and have not had their hello handled: they hold a socket but no Connection yet. */
  get pendingHellos(): number {
    return this.#pendingHellos;
  }

  /** Replayed messages dropped as poison since start (HOTLINE_E_POISON_MESSAGE). */
  get poisonDropped(): number {
    return this.#poisonDropped;
  }

  /** Detached sessions evicted since start because `maxDetached` were waiting. */
  get evicted(): number {
    return this.#evicted;
  }

  get sendingAway(): boolean {
    return this.#sendingAway;
  }

  async start(): Promise<void> {
    this.#secret = await this.#o.store.secret();
    this.#o.store.onLost?.((id, err) => {
      const s = this.#sessions.get(id);
      if (s) this.#takenOver(s, err);
    });
    this.#ackTimer = setInterval(() => this.#flushAcks(), this.#o.ackInterval);
    this.#ackTimer.unref();
    const sweep = Math.max(1000, this.#o.ttl / 4);
    this.#sweepTimer = setInterval(() => this.#sweep(), sweep);
    this.#sweepTimer.unref();
  }

  /** From here on, closing a session keeps it in the store and sends its client a reconnect hint. */
  beginSendAway(): void {
    this.#sendingAway = true;
    this.#flushAcks();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#ackTimer);
    clearInterval(this.#sweepTimer);
    this.#flushAcks();
    for (const s of this.#sessions.values()) if (s.ttlTimer) clearTimeout(s.ttlTimer);
    if (this.#o.ownStore) await this.#o.store.close();
  }

  /** A WebSocket that chose `hotline.v1`: wait for its hello. */
  attach(ws: WebSocket, remoteAddress: string): void {
    ws.on('error', () => undefined); // ws emits 'error' before 'close'; the close path handles the socket
    const timer = setTimeout(() => ws.close(CLOSE_PROTOCOL_ERROR, 'no hello'), this.#deps.helloTimeout);
    timer.unref();
    this.#pendingHellos++;
    let pending = true;
    const settle = () => {
      if (pending) this.#pendingHellos--;
      pending = false;
    };
    const onClose = () => {
      clearTimeout(timer);
      settle();
    };
    ws.once('close', onClose);
    // Frames after the hello wait here until the session takes the socket: a restore may read the store first.
    const early = new EarlyFrames(this.#deps.dispatcher.limits);
    let first = true;
    const onMessage = (data: Buffer, isBinary: boolean) => {
      if (!first) {
        const over = early.push(data, isBinary);
        if (over) this.#earlyOverflow(ws, over, remoteAddress);
        return;
      }
      first = false;
      clearTimeout(timer);
      // Decoded now, so what waits is the small frame, never the up-to-maxPayload text a client sent as its hello.
      const f = decodeFrame(isBinary ? '' : data.toString());
      // The hello waits its turn (src/transport/handshake-pacer.ts); frames behind it wait in `early` meanwhile.
      const paced = this.#deps.pace((): void => {
        if (ws.readyState !== ws.OPEN) return; // gone while it waited: onClose settled it
        ws.off('close', onClose);
        helloNow(f);
      });
      if (!paced) {
        this.#deps.reportError(new HotlineError('HOTLINE_E_HANDSHAKE_BACKLOG', `refused a session hello from ${remoteAddress || 'an unknown address'}: too many handshakes wait`));
        ws.close(CLOSE_TRY_AGAIN_LATER, 'handshake backlog');
      }
    };
    const helloNow = (f: ReceivedFrame | HotlineError): void => {
      this.#hello(ws, f, remoteAddress).then(
        () => {
          settle();
          ws.off('message', onMessage);
          early.replay((d, b) => ws.emit('message', d, b));
        },
        (err: unknown) => {
          settle();
          ws.off('message', onMessage);
          early.discard();
          this.#deps.reportError(new HotlineError('HOTLINE_E_SESSION_STORE', `session hello failed: ${messageOf(err)}`, { cause: err }));
          ws.close(CLOSE_INTERNAL_ERROR, 'session store error');
        },
      );
    };
    ws.on('message', onMessage);
  }

  /**
   * A client sent too much after its hello, before its session was ready: 1008, and a socket that does not finish
   * the close handshake within the grace is cut off, as a connection over its inbound bounds is (connection.ts).
   */
  #earlyOverflow(ws: WebSocket, over: string, remoteAddress: string): void {
    const who = `hotline.v1 client ${remoteAddress || '(unknown address)'}`;
    this.#deps.reportError(new HotlineError('HOTLINE_E_INBOUND_OVERFLOW', `${who} sent ${over} after its hello, before its session was ready; closing`));
    ws.close(CLOSE_POLICY, 'inbound queue overflow');
    const grace = setTimeout(() => ws.terminate(), POLICY_CLOSE_GRACE_MS);
    grace.unref();
    ws.once('close', () => clearTimeout(grace));
  }

  async #hello(ws: WebSocket, f: ReceivedFrame | HotlineError, remoteAddress: string): Promise<void> {
    if (f instanceof HotlineError || f.t !== 'hello') {
      const why = f instanceof HotlineError ? `: ${f.message}` : `, not ${f.t}`;
      this.#deps.reportError(new HotlineError('HOTLINE_E_SESSION_PROTOCOL', `the first frame of a hotline.v1 socket must be a hello${why}`));
      ws.close(CLOSE_PROTOCOL_ERROR, 'expected hello');
      return;
    }
    if (this.#sendingAway || this.#closed) {
      ws.close(CLOSE_SERVICE_RESTART, 'service restart');
      return;
    }
    const secret = this.#secret!;
    let lost: LostCode | undefined;
    const claim = f.token === null ? undefined : verifyToken(secret, f.token);
    if (f.token !== null && claim === undefined) lost = 'HOTLINE_E_SESSION_TOKEN';
    if (claim) {
      const live = this.#sessions.get(claim.id);
      if (live) {
        lost = this.tokenRefusal(live, claim, remoteAddress) ?? live.cannotResume(f.rx);
        // A refused token leaves the session alone: whoever holds the current token keeps it (the victim of a replay).
        if (!lost) return this.#resume(ws, live, f.rx);
        if (lost !== 'HOTLINE_E_SESSION_TOKEN') live.terminate();
      } else {
        const outcome = await this.#restore(ws, claim, f.rx, remoteAddress);
        if (outcome === 'done') return;
        lost = outcome;
      }
    }
    if (lost) this.#deps.sessionLost?.(lost);
    const id = newSessionId();
    const s = new ServerSession(this, id, remoteAddress);
    const connId = newConnectionId();
    const created = this.write(id, { create: true, connId, touchedAt: Date.now() });
    if (isThenable(created)) await created;
    if (ws.readyState !== ws.OPEN) return void this.#o.store.delete(id);
    this.#sessions.set(id, s);
    const welcome: Omit<WelcomeFrame, 't' | 'rx' | 'replay'> = {
      token: issueToken(secret, id, s.gen),
      resumed: false,
      lost: lost ? { code: lost, message: LOST_MESSAGES[lost] } : null,
    };
    s.attach(ws, 0, welcome);
    // After the welcome, so whatever onOpen sends follows it.
    s.conn = new Connection(s, this.#deps.dispatcher, { id: connId, ...this.#hooks(s) });
  }

  /**
   * Why the token of `claim` may not resume `s`, or undefined when it may: it must be the current generation, or the
   * one before while the session is detached and its client has not spoken since the last resume (that welcome,
   * with the current token, may have been lost with its socket; the client then still holds the previous one).
   * A session that is attached, or whose client has spoken, accepts the current token only: a replayed old token is
   * refused and the session is left alone. Decided synchronously with the rotation in #resume/#restore, so of two
   * hellos racing with the same token, the first resumes and the second is refused.
   */
  tokenRefusal(s: { gen: number; genConfirmed: boolean; phase?: string }, claim: TokenClaim, remoteAddress: string): 'HOTLINE_E_SESSION_TOKEN' | undefined {
    if (claim.gen === s.gen) return undefined;
    if (claim.gen === s.gen - 1 && !s.genConfirmed && s.phase !== 'attached') return undefined;
    this.#deps.reportError(
      new HotlineError('HOTLINE_E_SESSION_TOKEN', `session ${claim.id}: refused a resume token of generation ${claim.gen} from ${remoteAddress || 'an unknown address'} (current ${s.gen}): already used, or stolen`),
    );
    return 'HOTLINE_E_SESSION_TOKEN';
  }

  /** Resume a session of this process on a new socket, with a rotated token. */
  async #resume(ws: WebSocket, s: ServerSession, rx: number): Promise<void> {
    const { gen, written } = this.#rotate(s);
    // The welcome may name the new token only once the store has it: after a crash, the store decides.
    if (isThenable(written)) await written;
    if (ws.readyState !== ws.OPEN) return;
    if (this.#sessions.get(s.id) !== s || s.phase === 'closing' || s.phase === 'closed') return void ws.close(CLOSE_INTERNAL_ERROR, 'session ended meanwhile');
    this.#detached.delete(s);
    s.attach(ws, rx, { token: issueToken(this.#secret!, s.id, gen), resumed: true, lost: null });
    this.#deps.sessionResumed?.();
  }

  /**
   * Rotate the token of `s` now, synchronously, so a second hello with the same token is refused, and store the new
   * generation (`written`, a promise with an async store).
   */
  #rotate(s: ServerSession): { gen: number; written: void | Promise<void> } {
    s.gen++;
    s.genConfirmed = false;
    return { gen: s.gen, written: this.write(s.id, { gen: s.gen, genConfirmed: false, touchedAt: Date.now() }) };
  }

  /** Restore a session from the store into this process: 'done', or why it cannot be. */
  async #restore(ws: WebSocket, claim: TokenClaim, rx: number, remoteAddress: string): Promise<LostCode | 'done'> {
    const id = claim.id;
    let rec;
    try {
      rec = this.#o.store.get(id);
      if (isThenable(rec)) rec = await rec;
    } catch (err) {
      // A record the store refused as malformed (a shared store anything can write to): reported, and the client
      // starts over with a lost-session rather than retrying into the same record forever.
      if (!(err instanceof HotlineError) || err.code !== 'HOTLINE_E_SESSION_RECORD') throw err;
      this.#deps.reportError(err);
      return 'HOTLINE_E_SESSION_UNKNOWN';
    }
    if (ws.readyState !== ws.OPEN) return 'done';
    // Another hello restored it while the store was read: decide against that live session instead.
    const live = this.#sessions.get(id);
    if (live) {
      const refused = this.tokenRefusal(live, claim, remoteAddress) ?? live.cannotResume(rx);
      if (refused) return refused;
      await this.#resume(ws, live, rx);
      return 'done';
    }
    let lost: LostCode | undefined;
    if (!rec) lost = 'HOTLINE_E_SESSION_UNKNOWN';
    else if (rec.expired || rec.touchedAt < Date.now() - this.#o.ttl) lost = 'HOTLINE_E_SESSION_EXPIRED';
    else if (this.#badRooms(rec.id, rec.rooms)) lost = 'HOTLINE_E_SESSION_UNKNOWN';
    else lost = this.tokenRefusal({ gen: rec.gen ?? 0, genConfirmed: rec.genConfirmed ?? false }, claim, remoteAddress) ?? checkResume(rec.out, rec.outSeq, rx);
    if (!rec || lost) {
      // A refused token leaves the record to its holder; an expired or broken one is gone.
      if (rec && lost !== 'HOTLINE_E_SESSION_TOKEN') await this.#o.store.delete(id);
      return lost ?? 'HOTLINE_E_SESSION_UNKNOWN';
    }
    const s = new ServerSession(this, id, remoteAddress, rec);
    this.#sessions.set(id, s);
    const { gen, written } = this.#rotate(s);
    try {
      if (isThenable(written)) await written;
    } catch (err) {
      // The takeover was refused (another node won the compare-and-set) or the store is away: not restored here.
      if (this.#sessions.get(id) === s) this.#sessions.delete(id);
      throw err;
    }
    let state: unknown;
    try {
      state = rec.state === undefined ? undefined : JSON.parse(rec.state);
    } catch {
      state = undefined;
    }
    if (ws.readyState === ws.OPEN) {
      s.attach(ws, rx, { token: issueToken(this.#secret!, id, gen), resumed: true, lost: null });
      this.#deps.sessionResumed?.();
    }
    // The connection keeps the id it had in the process that wrote the record (a malformed or taken one is replaced:
    // the store is a file anyone with access can edit).
    const d = this.#deps.dispatcher;
    const connId = isConnectionId(rec.connId) && !d.connections.has(rec.connId) ? rec.connId : undefined;
    // Its rooms are joined before its first message can be handled (the early frames replay after this returns).
    s.conn = new Connection(s, d, { id: connId, resume: { state, rooms: rec.rooms }, ...this.#hooks(s) });
    if (connId === undefined) {
      // Written once, so the id holds from this resume on (a record from an older build had none).
      const cw = this.write(id, { connId: s.conn.id, touchedAt: Date.now() });
      if (isThenable(cw)) cw.then(undefined, (err: unknown) => this.storeError(s, err));
    }
    // Its socket went while the rotation was stored: it waits detached, like any session whose client is away.
    if (s.phase === 'detached') this.detached(s);
    return 'done';
  }

  /** What a session's connection tells it: events (which message a send belongs to), poison, room changes. */
  #hooks(s: ServerSession): Pick<ConnectionOptions, 'onEventStart' | 'onEventDone' | 'onPoison' | 'onRoomsChanged'> {
    return { onEventStart: s.onEventStart, onEventDone: s.onEventDone, onPoison: s.onPoison, onRoomsChanged: s.onRoomsChanged };
  }

  /**
   * True, and reported (HOTLINE_E_SESSION_RECORD), when a record's rooms are not what joins could have made: the
   * whole record is refused then, never joined in part. The NATS codec checks them as it decodes; this check covers
   * every store (a file's log is as editable as the bucket).
   */
  #badRooms(id: string, rooms: unknown): boolean {
    if (rooms === undefined) return false;
    const problem = roomListProblem(rooms);
    if (!problem) return false;
    this.#deps.reportError(new HotlineError('HOTLINE_E_SESSION_RECORD', `session record ${id} refused: ${problem}`));
    return true;
  }

  // SessionHost: what each session asks of the manager.

  write(id: string, change: SessionChange): void | Promise<void> {
    return this.#o.store.write(id, change);
  }

  ended(s: ServerSession): void {
    if (this.#sessions.get(s.id) !== s) return;
    this.#sessions.delete(s.id);
    this.#detached.delete(s);
    this.#ackDue.delete(s);
    if (s.kept) return;
    try {
      const r = this.#o.store.delete(s.id);
      if (isThenable(r)) r.then(undefined, (err: unknown) => this.storeError(s, err));
    } catch (err) {
      this.storeError(s, err);
    }
  }

  detached(s: ServerSession): void {
    s.ttlTimer = setTimeout(() => {
      s.ttlTimer = undefined;
      // Marked rather than deleted, so a client that comes back late hears "expired", not "unknown".
      this.write(s.id, { expired: true, touchedAt: Date.now() });
      this.#sessions.delete(s.id);
      this.#detached.delete(s);
      s.expire();
    }, this.#o.ttl);
    s.ttlTimer.unref();
    this.#detached.add(s);
    if (this.#detached.size > this.#o.maxDetached) this.#evictOldest();
  }

  /**
   * One detached session too many: the one whose client has been away longest ends now, as if its TTL had run out,
   * and its record is dropped so the store stays bounded too (its client, if it comes back, hears "unknown").
   */
  #evictOldest(): void {
    const s = this.#detached.values().next().value as ServerSession;
    this.#detached.delete(s);
    this.#sessions.delete(s.id);
    this.#ackDue.delete(s);
    if (s.ttlTimer) clearTimeout(s.ttlTimer);
    s.ttlTimer = undefined;
    this.#evicted++;
    try {
      const r = this.#o.store.delete(s.id);
      if (isThenable(r)) r.then(undefined, (err: unknown) => this.storeError(s, err));
    } catch (err) {
      this.storeError(s, err);
    }
    this.#deps.reportError(
      new HotlineError('HOTLINE_E_SESSION_EVICTED', `session ${s.id} evicted: ${this.#o.maxDetached} detached sessions were waiting for their clients (sessions.maxDetached); ${this.#evicted} evicted so far`),
      s.conn,
    );
    s.expire();
  }

  ackDue(s: ServerSession): void {
    this.#ackDue.add(s);
  }

  protocolError(s: ServerSession, message: string): void {
    this.#deps.reportError(new HotlineError('HOTLINE_E_SESSION_PROTOCOL', `session ${s.id}: ${message}`), s.conn);
  }

  storeError(s: ServerSession, err: unknown): void {
    const e = err instanceof HotlineError ? err : new HotlineError('HOTLINE_E_SESSION_STORE', `session ${s.id}: ${messageOf(err)}`, { cause: err });
    if (e.code === 'HOTLINE_E_SESSION_CONFLICT') return this.#takenOver(s, e);
    this.#deps.reportError(e, s.conn);
  }

  /**
   * Another node owns this session now (a shared store's compare-and-set said so): this copy closes, and its record,
   * no longer this node's, is left alone (the store refuses to delete what it does not own). Reported once.
   */
  #takenOver(s: ServerSession, err: Error): void {
    if (this.#sessions.get(s.id) !== s) return;
    this.#deps.reportError(err instanceof HotlineError ? err : new HotlineError('HOTLINE_E_SESSION_CONFLICT', err.message), s.conn);
    if (s.conn) s.terminate();
    // A session whose hello is still being restored has no socket and no connection yet: just forget it.
    this.#sessions.delete(s.id);
    this.#detached.delete(s);
    this.#ackDue.delete(s);
  }

  poisoned(s: ServerSession, err: HotlineError): void {
    this.#poisonDropped++;
    this.#deps.reportError(err, s.conn);
  }

  #flushAcks(): void {
    if (this.#ackDue.size === 0) return;
    const due = [...this.#ackDue];
    this.#ackDue.clear();
    for (const s of due) s.flushAck();
  }

  #sweep(): void {
    const now = Date.now();
    // Connected sessions are touched, so that after a crash their age counts from the crash, not from their last message.
    for (const s of this.#sessions.values()) if (s.phase === 'attached' && now - s.lastWriteAt > this.#o.ttl / 4) s.touch(now);
    try {
      const r = this.#o.store.expire?.(now - 2 * this.#o.ttl);
      if (isThenable(r)) r.then(undefined, () => undefined);
    } catch {
      // expiry is housekeeping; the next sweep tries again
    }
  }
}
