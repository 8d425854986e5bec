/**
 * The session layer of a host: takes each WebSocket that chose the `hotline.v1` subprotocol, reads its hello, and
 * creates, resumes (in this process) or restores (from the store, after a restart) its session. Then it owns the
 * timers every session shares: ack flushing, TTL expiry, keeping connected sessions fresh in the store.
 */
import type { WebSocket } from 'ws';
import { CLOSE_INTERNAL_ERROR, CLOSE_PROTOCOL_ERROR, CLOSE_SERVICE_RESTART } from '../connection/close-codes.js';
import { isConnectionId, newConnectionId } from '../connection/conn-id.js';
import { Connection } from '../connection/connection.js';
import type { Dispatcher } from '../connection/dispatcher.js';
import { HotlineError, messageOf } from '../errors.js';
import type { ResolvedSessionOptions } from './options.js';
import { decodeFrame, type LostCode, type WelcomeFrame } from './protocol.js';
import { checkResume, ServerSession, type SessionHost } from './session.js';
import type { SessionChange } from './store.js';
import { DEFAULT_MAX_REPLAY } from './store.js';
import { issueToken, newSessionId, verifyToken } from './token.js';

export interface SessionManagerDeps {
  dispatcher: Dispatcher;
  options: ResolvedSessionOptions;
  /** How long a client has to send its hello, in ms. */
  helloTimeout: number;
  reportError(err: HotlineError, conn?: Connection): void;
  /** A client asked to resume and could not: it gets a new session and a lost-session with this code. */
  sessionLost?(code: LostCode): void;
}

const LOST_MESSAGES: Record<LostCode, string> = {
  HOTLINE_E_SESSION_EXPIRED: 'the session expired',
  HOTLINE_E_SESSION_UNKNOWN: 'no such session (expired long ago, or kept in another store)',
  HOTLINE_E_SESSION_TOKEN: 'the resume token signature is invalid',
  HOTLINE_E_SESSION_OVERFLOW: 'the replay buffer overflowed: messages this client missed were dropped',
  HOTLINE_E_SESSION_PROTOCOL: 'the client claims messages this session never sent',
};

function isThenable<T>(v: unknown): v is PromiseLike<T> {
  return v !== null && typeof v === 'object' && typeof (v as PromiseLike<T>).then === 'function';
}

export class SessionManager implements SessionHost {
  readonly reconnectDelay: number;
  readonly maxReplay: number;
  #deps: SessionManagerDeps;
  #o: ResolvedSessionOptions;
  #sessions = new Map<string, ServerSession>();
  #ackDue = new Set<ServerSession>();
  #secret: Uint8Array | undefined;
  #draining = false;
  #closed = false;
  #ackTimer: NodeJS.Timeout | undefined;
  #sweepTimer: NodeJS.Timeout | undefined;

  constructor(deps: SessionManagerDeps) {
    this.#deps = deps;
    this.#o = deps.options;
    this.reconnectDelay = deps.options.reconnectDelay;
    this.maxReplay = deps.options.store.maxReplay ?? DEFAULT_MAX_REPLAY;
  }

  /** Sessions alive in this process (attached or waiting for their client). */
  get size(): number {
    return this.#sessions.size;
  }

  get draining(): boolean {
    return this.#draining;
  }

  async start(): Promise<void> {
    this.#secret = await this.#o.store.secret();
    this.#ackTimer = setInterval(() => this.#flushAcks(), this.#o.ackInterval);
    this.#ackTimer.unref();
    const sweep = Math.max(1000, this.#o.ttl / 4);
    this.#sweepTimer = setInterval(() => this.#sweep(), sweep);
    this.#sweepTimer.unref();
  }

  /** From here on, closing a session keeps it in the store and sends its client a reconnect hint. */
  beginDrain(): void {
    this.#draining = true;
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
    const onClose = () => clearTimeout(timer);
    ws.once('close', onClose);
    // Frames after the hello wait here until the session takes the socket: a restore may read the store first.
    const early: Array<[Buffer, boolean]> = [];
    let first = true;
    const onMessage = (data: Buffer, isBinary: boolean) => {
      if (!first) {
        early.push([data, isBinary]);
        return;
      }
      first = false;
      clearTimeout(timer);
      ws.off('close', onClose);
      this.#hello(ws, isBinary ? '' : data.toString(), remoteAddress).then(
        () => {
          ws.off('message', onMessage);
          for (const [d, b] of early) ws.emit('message', d, b);
        },
        (err: unknown) => {
          ws.off('message', onMessage);
          this.#deps.reportError(new HotlineError('HOTLINE_E_SESSION_STORE', `session hello failed: ${messageOf(err)}`, { cause: err }));
          ws.close(CLOSE_INTERNAL_ERROR, 'session store error');
        },
      );
    };
    ws.on('message', onMessage);
  }

  async #hello(ws: WebSocket, text: string, remoteAddress: string): Promise<void> {
    const f = decodeFrame(text);
    if (f?.t !== 'hello') {
      this.#deps.reportError(new HotlineError('HOTLINE_E_SESSION_PROTOCOL', 'the first frame of a hotline.v1 socket must be a hello'));
      ws.close(CLOSE_PROTOCOL_ERROR, 'expected hello');
      return;
    }
    if (this.#draining || this.#closed) {
      ws.close(CLOSE_SERVICE_RESTART, 'service restart');
      return;
    }
    const secret = this.#secret!;
    let lost: LostCode | undefined;
    if (f.token !== null) {
      const id = verifyToken(secret, f.token);
      if (id === undefined) {
        lost = 'HOTLINE_E_SESSION_TOKEN';
      } else {
        const live = this.#sessions.get(id);
        if (live) {
          lost = live.cannotResume(f.rx);
          if (!lost) return live.attach(ws, f.rx, { token: f.token, resumed: true, lost: null });
          live.terminate();
        } else {
          let rec = this.#o.store.get(id);
          if (isThenable(rec)) rec = await rec;
          if (ws.readyState !== ws.OPEN) return;
          if (!rec) lost = 'HOTLINE_E_SESSION_UNKNOWN';
          else if (rec.expired || rec.touchedAt < Date.now() - this.#o.ttl) lost = 'HOTLINE_E_SESSION_EXPIRED';
          else lost = checkResume(rec.out, rec.outSeq, f.rx);
          if (rec && !lost) {
            const s = new ServerSession(this, id, remoteAddress, rec);
            this.#sessions.set(id, s);
            s.attach(ws, f.rx, { token: f.token, resumed: true, lost: null });
            let state: unknown;
            try {
              state = rec.state === undefined ? undefined : JSON.parse(rec.state);
            } catch {
              state = undefined;
            }
            // The connection keeps the id it had in the process that wrote the record (a malformed or taken one is
            // replaced: the store is a file anyone with access can edit).
            const d = this.#deps.dispatcher;
            const connId = isConnectionId(rec.connId) && !d.connections.has(rec.connId) ? rec.connId : undefined;
            s.conn = new Connection(s, d, { id: connId, resume: { state }, onEventStart: s.onEventStart, onEventDone: s.onEventDone });
            if (connId === undefined) {
              // Written once, so the id holds from this resume on (a record from an older build had none).
              const w = this.write(id, { connId: s.conn.id, touchedAt: Date.now() });
              if (isThenable(w)) w.then(undefined, (err: unknown) => this.storeError(s, err));
            }
            return;
          }
          if (rec) await this.#o.store.delete(id);
        }
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
      token: issueToken(secret, id),
      resumed: false,
      lost: lost ? { code: lost, message: LOST_MESSAGES[lost] } : null,
    };
    s.attach(ws, 0, welcome);
    // After the welcome, so whatever onOpen sends follows it.
    s.conn = new Connection(s, this.#deps.dispatcher, { id: connId, onEventStart: s.onEventStart, onEventDone: s.onEventDone });
  }

  // SessionHost: what each session asks of the manager.

  write(id: string, change: SessionChange): void | Promise<void> {
    return this.#o.store.write(id, change);
  }

  ended(s: ServerSession): void {
    if (this.#sessions.get(s.id) !== s) return;
    this.#sessions.delete(s.id);
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
      s.expire();
    }, this.#o.ttl);
    s.ttlTimer.unref();
  }

  ackDue(s: ServerSession): void {
    this.#ackDue.add(s);
  }

  protocolError(s: ServerSession, message: string): void {
    this.#deps.reportError(new HotlineError('HOTLINE_E_SESSION_PROTOCOL', `session ${s.id}: ${message}`), s.conn);
  }

  storeError(s: ServerSession, err: unknown): void {
    const e = err instanceof HotlineError ? err : new HotlineError('HOTLINE_E_SESSION_STORE', `session ${s.id}: ${messageOf(err)}`, { cause: err });
    this.#deps.reportError(e, s.conn);
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
