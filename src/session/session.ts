/**
 * One server-side session: the `Link` its `Connection` writes to. A session outlives its sockets: when the socket
 * drops, the connection stays open for the plugin, sends are buffered (and stored), and the client that comes back
 * with the token gets exactly what it missed. Only the plugin closing it, its TTL, or a shutdown ends it.
 *
 *   attached ──socket closed──► detached ──resumed──► attached
 *      │                            │ ttl
 *      └──plugin close / send-away► closing ──socket closed──► closed ◄──┘
 */
import type { WebSocket } from 'ws';
import { CLOSE_ABNORMAL, CLOSE_GOING_AWAY, CLOSE_NORMAL, CLOSE_PROTOCOL_ERROR, CLOSE_SERVICE_RESTART } from '../connection/close-codes.js';
import type { Connection } from '../connection/connection.js';
import type { Link } from '../connection/link.js';
import { isThenable } from '../connection/thenable.js';
import { HotlineError } from '../errors.js';
import { decodeFrame, encodeDrop, encodeMessage, type WelcomeFrame } from './protocol.js';
import type { SessionChange, SessionRecord, StoredMessage } from './store.js';

export type SessionPhase = 'attached' | 'detached' | 'closing' | 'closed';

/** What a session needs from its manager. */
export interface SessionHost {
  readonly sendingAway: boolean;
  readonly reconnectDelay: number;
  readonly maxReplay: number;
  /** This process replaces a worker that died: mark a restored session's first message before handling it. */
  readonly markReplays: boolean;
  write(id: string, change: SessionChange): void | Promise<void>;
  /** The session ended for good: drop it from the store too. */
  ended(s: ServerSession): void;
  detached(s: ServerSession): void;
  ackDue(s: ServerSession): void;
  protocolError(s: ServerSession, message: string): void;
  storeError(s: ServerSession, err: unknown): void;
  /** A replayed message was dropped as poison (HOTLINE_E_POISON_MESSAGE): report and count it. */
  poisoned(s: ServerSession, err: HotlineError): void;
}

const kSession = Symbol('hotline.session');
type WsWithSession = WebSocket & { [kSession]: ServerSession };

// Shared listeners, the ws `socketOnClose` pattern: no closure per session on the message path.
function sessionOnMessage(this: WebSocket, data: Buffer, isBinary: boolean): void {
  const s = (this as WsWithSession)[kSession];
  if (isBinary) s.fail('binary frame on a session socket');
  else s.frame(data.toString());
}

function sessionOnClose(this: WebSocket, code: number, reason: Buffer): void {
  (this as WsWithSession)[kSession].socketClosed(this, code, reason.toString());
}

export class ServerSession implements Link {
  readonly transport = 'ws' as const;
  readonly id: string;
  remoteAddress: string;
  conn!: Connection;
  #h: SessionHost;
  #ws: WebSocket | undefined;
  #phase: SessionPhase = 'detached';
  /** Sent away: the stored record stays for the next process. */
  #keep = false;
  #outSeq: number;
  #out: StoredMessage[];
  /** Last client seq received and queued to the connection. */
  #inRecv: number;
  /** Last client seq whose handling is stored: what the server acks and tells a resuming client. */
  #inStored: number;
  #lastAckSent = 0;
  /** Client seqs queued to the connection and not yet handled, in order. */
  #pendingIn: number[] = [];
  /** The client seq whose handler is running, if one is. */
  #handling: number | undefined;
  /** An event of the connection (open, a message, close) is being handled. */
  #inEvent = false;
  /** The connection joined or left a room since its rooms were last stored. */
  #roomsDirty = false;
  #ackIn: number | undefined;
  #writesInFlight = 0;
  #held: string[] = [];
  /**
   * issue 11, poison messages. A session restored from the store (a worker died, or an upgrade sent it away): the
   * first client seq it will get is the message left unhandled, `inSeq + 1`. Checked once, at that message.
   */
  #suspect: number | undefined;
  /** The record says a restored session already began handling `#suspect` and no worker finished it: drop it. */
  #poisoned = false;
  /** Inbound backpressure (Connection): the socket is not read until the queue is down to half; a resumed socket too. */
  #readingPaused = false;
  lastWriteAt = Date.now();
  /** TTL timer while detached; owned by the manager. */
  ttlTimer: NodeJS.Timeout | undefined;
  /** The generation of the valid resume token (token.ts); rotated by the manager at every resume. */
  gen: number;
  /** The client has sent a frame since `gen` was issued: it holds that token, so the previous one is dead. */
  genConfirmed: boolean;

  constructor(h: SessionHost, id: string, remoteAddress: string, record?: SessionRecord) {
    this.#h = h;
    this.id = id;
    this.remoteAddress = remoteAddress;
    this.#outSeq = record?.outSeq ?? 0;
    this.#out = record?.out ?? [];
    this.#inRecv = this.#inStored = record?.inSeq ?? 0;
    this.gen = record?.gen ?? 0;
    this.genConfirmed = record?.genConfirmed ?? false;
    if (record) {
      this.#suspect = record.inSeq + 1;
      this.#poisoned = record.suspect === this.#suspect;
    }
  }

  get phase(): SessionPhase {
    return this.#phase;
  }

  get bufferedAmount(): number {
    return this.#ws?.bufferedAmount ?? 0;
  }

  /** Connection hooks: which message a send belongs to, and when a message is fully handled. */
  readonly onEventStart = (kind: 'open' | 'message' | 'close'): void => {
    this.#inEvent = true;
    if (kind === 'message') this.#handling = this.#pendingIn[0];
  };

  readonly onEventDone = (kind: 'open' | 'message' | 'close'): void => {
    this.#inEvent = false;
    if (kind === 'close') return;
    if (kind === 'message') {
      this.#handling = undefined;
      const seq = this.#pendingIn.shift() ?? this.#inStored;
      this.#store(this.#withRooms({ inSeq: seq, state: this.#stateJson(), touchedAt: Date.now() }));
      this.#advanceIn(seq);
    } else {
      this.#store(this.#withRooms({ state: this.#stateJson(), touchedAt: Date.now() }));
    }
  };

  /**
   * The connection joined or left a room (issue 13). Inside one of its handlers, the rooms are stored with what that
   * handler stores (its first send, or its end), as `conn.state` is: a crash before then replays the message, and
   * the handler joins again. Outside (a timer, another connection's handler): stored now. Not once the session is
   * closing: its record is deleted, or, sent away, must keep the rooms the next process joins again.
   */
  readonly onRoomsChanged = (): void => {
    if (this.#phase === 'closing' || this.#phase === 'closed') return;
    this.#roomsDirty = true;
    if (!this.#inEvent) this.#store(this.#withRooms({ touchedAt: Date.now() }));
  };

  /**
   * The message being handled was dropped as poison by its version's runtime (worker mode: in flight at two failures
   * of the version). Its sender gets the `drop` frame now; the settle that follows stores and acks it as handled, so
   * the client stops resending it, and a resume never replays it.
   */
  readonly onPoison = (err: HotlineError): void => {
    const seq = this.#handling;
    if (seq === undefined) return;
    this.#emit(encodeDrop(seq, { code: 'HOTLINE_E_POISON_MESSAGE', message: err.message }));
    this.#h.poisoned(this, err);
  };

  /**
   * Why a client that has received up to `rx` cannot resume, or undefined if it can: the messages it needs were
   * dropped (overflow), or it claims messages never sent (the store lost writes, or the token is from elsewhere).
   */
  cannotResume(rx: number): 'HOTLINE_E_SESSION_OVERFLOW' | 'HOTLINE_E_SESSION_PROTOCOL' | undefined {
    return checkResume(this.#out, this.#outSeq, rx);
  }

  /** Take a (new) socket: welcome, then replay what the client has not received. */
  attach(ws: WebSocket, rx: number, welcome: Omit<WelcomeFrame, 't' | 'rx' | 'replay'>): void {
    const old = this.#ws;
    if (old) {
      // The client came back before its old socket's close reached us: that socket is dead to it.
      this.#ws = undefined;
      old.terminate();
    }
    if (this.ttlTimer) clearTimeout(this.ttlTimer);
    this.ttlTimer = undefined;
    this.#trim(rx);
    this.#ws = ws;
    this.#phase = 'attached';
    this.#held.length = 0;
    (ws as WsWithSession)[kSession] = this;
    if (this.#readingPaused) ws.pause();
    ws.on('message', sessionOnMessage);
    ws.on('close', sessionOnClose);
    const frame: WelcomeFrame = { t: 'welcome', ...welcome, rx: this.#inStored, replay: this.#out.length };
    this.#lastAckSent = this.#inStored;
    ws.send(JSON.stringify(frame));
    for (const [seq, data] of this.#out) ws.send(encodeMessage(seq, data));
  }

  send(data: string | Uint8Array): void {
    if (this.#phase === 'closing' || this.#phase === 'closed') return;
    const seq = ++this.#outSeq;
    const entry: StoredMessage = [seq, data];
    this.#out.push(entry);
    if (this.#out.length > this.#h.maxReplay) this.#out.splice(0, this.#out.length - this.#h.maxReplay);
    // A reply stored with the message it answers: after a crash the client neither resends that message nor
    // misses the reply. Stored before it is sent, so no client ever holds a seq the store does not know.
    const inSeq = this.#handling ?? this.#inStored;
    this.#store(this.#withRooms({ out: entry, inSeq, state: this.#stateJson(), touchedAt: Date.now() }));
    this.#advanceIn(inSeq);
    this.#emit(encodeMessage(seq, data));
  }

  close(code: number, reason: string): void {
    if (this.#phase === 'closing' || this.#phase === 'closed') return;
    const ws = this.#ws;
    if (this.#h.sendingAway) {
      this.#keep = true;
      this.#phase = 'closing';
      if (!ws) return this.#finish(CLOSE_SERVICE_RESTART, 'service restart');
      this.flushAck();
      ws.send(JSON.stringify({ t: 'reconnect', delay: this.#h.reconnectDelay }));
      ws.close(CLOSE_SERVICE_RESTART, 'service restart');
      return;
    }
    this.#phase = 'closing';
    this.#h.ended(this);
    if (!ws) return this.#finish(code, reason);
    ws.send(JSON.stringify({ t: 'end' }));
    ws.close(code, reason);
  }

  terminate(): void {
    if (this.#phase === 'closed') return;
    if (this.#phase !== 'closing') {
      this.#phase = 'closing';
      if (this.#h.sendingAway) this.#keep = true;
      else this.#h.ended(this);
    }
    if (this.#ws) this.#ws.terminate();
    else this.#finish(CLOSE_ABNORMAL, '');
  }

  pauseReading(): void {
    this.#readingPaused = true;
    this.#ws?.pause();
  }

  resumeReading(): void {
    this.#readingPaused = false;
    this.#ws?.resume();
  }

  /** The TTL passed while detached: the session is over. */
  expire(): void {
    if (this.#phase !== 'detached') return;
    this.#phase = 'closing';
    this.#finish(CLOSE_GOING_AWAY, 'session expired');
  }

  /** Send the cumulative ack if it moved. */
  flushAck(): void {
    if (this.#ackIn !== undefined) {
      this.#store({ acked: this.#ackIn, touchedAt: Date.now() });
      this.#ackIn = undefined;
    }
    if (this.#ws && this.#inStored > this.#lastAckSent) {
      this.#lastAckSent = this.#inStored;
      this.#ws.send(JSON.stringify({ t: 'a', a: this.#inStored }));
    }
  }

  /** Keep the stored record fresh while the client is connected, so a crash does not make it look expired. */
  touch(now: number): void {
    this.#store({ touchedAt: now });
  }

  /** @internal One text frame from the client. */
  frame(text: string): void {
    // Clients send nothing on a socket before its welcome, so any frame proves the welcome's token arrived.
    if (!this.genConfirmed) this.#confirmGen();
    const f = decodeFrame(text);
    if (f instanceof HotlineError) return this.fail(f.message);
    if (f.t === 'm') {
      if (f.s <= this.#inRecv) return; // a resend of something already queued: the dedupe that makes resume exact
      if (f.s !== this.#inRecv + 1) return this.fail(`expected message ${this.#inRecv + 1}, got ${f.s}`);
      if (f.s === this.#suspect) {
        this.#suspect = undefined;
        if (this.#poisoned) return this.#dropPoison(f.s);
        // Marked before the plugin sees it, synchronously with a file store: if this worker dies with it in flight
        // too, the next restore finds the mark (the normal path never writes one: only a restored session's first,
        // in a worker that replaces one that died).
        if (this.#h.markReplays) this.#store({ suspect: f.s, touchedAt: Date.now() });
      }
      this.#inRecv = f.s;
      this.#pendingIn.push(f.s);
      const data = f.data;
      this.conn.receive(typeof data === 'string' ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    } else if (f.t === 'a') {
      if (f.a > this.#outSeq) return this.fail(`ack ${f.a} beyond the last message sent (${this.#outSeq})`);
      this.#trim(f.a);
      this.#ackIn = f.a;
      this.#h.ackDue(this);
    } else if (f.t === 'end') {
      // The client closed for good: the session ends now rather than waiting out its TTL.
      if (this.#phase !== 'attached') return;
      this.#phase = 'closing';
      this.#h.ended(this);
      this.#ws?.close(CLOSE_NORMAL, 'client ended the session');
    } else {
      this.fail(`unexpected ${f.t} frame`);
    }
  }

  /**
   * A message in flight when two workers died (the first left it unhandled, the second died after this session began
   * handling it again): never handed to the plugin a third time. It counts as handled (stored, acked, so the client
   * stops resending it) and its sender gets a `drop` frame with the code, before the ack.
   */
  #dropPoison(seq: number): void {
    this.#inRecv = seq;
    this.#poisoned = false;
    this.#store({ inSeq: seq, touchedAt: Date.now() });
    const err = new HotlineError(
      'HOTLINE_E_POISON_MESSAGE',
      `session ${this.id}: message ${seq} was in flight when two workers died (crash or hang); dropped, not handed to the plugin a third time`,
    );
    this.#emit(encodeDrop(seq, { code: 'HOTLINE_E_POISON_MESSAGE', message: err.message }));
    this.#advanceIn(seq);
    this.#h.poisoned(this, err);
  }

  /** A protocol violation: drop the socket; the client resumes from what the server has stored. */
  fail(message: string): void {
    this.#h.protocolError(this, message);
    this.#ws?.close(CLOSE_PROTOCOL_ERROR, 'session protocol error');
  }

  /** @internal The socket closed. */
  socketClosed(ws: WebSocket, code: number, reason: string): void {
    if (ws !== this.#ws) return; // a socket already replaced by a resume
    ws.off('message', sessionOnMessage);
    ws.off('close', sessionOnClose);
    this.#ws = undefined;
    if (this.#phase === 'closing' || this.#h.sendingAway) {
      if (this.#h.sendingAway) this.#keep = true;
      this.#phase = 'closing';
      return this.#finish(code, reason);
    }
    if (this.#phase !== 'attached') return;
    this.#phase = 'detached';
    this.#h.detached(this);
  }

  /** True when the record must survive this process (it was sent away), false when the session is over. */
  get kept(): boolean {
    return this.#keep;
  }

  #finish(code: number, reason: string): void {
    this.#phase = 'closed';
    if (this.ttlTimer) clearTimeout(this.ttlTimer);
    this.ttlTimer = undefined;
    if (!this.#keep) this.#h.ended(this);
    this.conn.closed({ code, reason });
  }

  #confirmGen(): void {
    this.genConfirmed = true;
    this.#store({ genConfirmed: true, touchedAt: Date.now() });
  }

  #trim(acked: number): void {
    let n = 0;
    while (n < this.#out.length && this.#out[n]![0] <= acked) n++;
    if (n > 0) this.#out.splice(0, n);
  }

  #advanceIn(seq: number): void {
    if (seq <= this.#inStored) return;
    this.#inStored = seq;
    this.#h.ackDue(this);
  }

  /** `change`, with the connection's rooms when they changed since they were last stored. */
  #withRooms(change: SessionChange): SessionChange {
    if (!this.#roomsDirty || this.#phase === 'closing' || this.#phase === 'closed') return change;
    this.#roomsDirty = false;
    change.rooms = this.conn.rooms();
    return change;
  }

  #stateJson(): string | undefined {
    const state = this.conn?.state;
    if (state === undefined) return undefined;
    try {
      return JSON.stringify(state);
    } catch (err) {
      this.#h.storeError(this, new HotlineError('HOTLINE_E_SESSION_STORE', `conn.state of session ${this.id} is not JSON-serialisable`, { cause: err }));
      return undefined;
    }
  }

  #store(change: SessionChange): void {
    if (this.#keep && this.#phase === 'closed') return;
    this.lastWriteAt = change.touchedAt;
    let r: void | Promise<void>;
    try {
      r = this.#h.write(this.id, change);
    } catch (err) {
      this.#h.storeError(this, err);
      return;
    }
    if (!isThenable(r)) return;
    this.#writesInFlight++;
    r.then(
      () => this.#written(),
      (err: unknown) => {
        this.#h.storeError(this, err);
        this.#written();
      },
    );
  }

  #written(): void {
    if (--this.#writesInFlight > 0) return;
    const held = this.#held;
    this.#held = [];
    for (const f of held) this.#ws?.send(f);
  }

  /** Send a frame now, or once the store has every write before it (an async store). */
  #emit(frame: string): void {
    if (!this.#ws) return;
    if (this.#writesInFlight > 0) this.#held.push(frame);
    else this.#ws.send(frame);
  }
}

/** See {@link ServerSession.cannotResume}; also used on a record loaded from the store. */
export function checkResume(out: StoredMessage[], outSeq: number, rx: number): 'HOTLINE_E_SESSION_OVERFLOW' | 'HOTLINE_E_SESSION_PROTOCOL' | undefined {
  if (rx > outSeq) return 'HOTLINE_E_SESSION_PROTOCOL';
  const first = out.length > 0 ? out[0]![0] : outSeq + 1;
  return rx < first - 1 ? 'HOTLINE_E_SESSION_OVERFLOW' : undefined;
}
