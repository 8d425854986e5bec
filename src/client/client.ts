/**
 * The hotline client: one logical session over as many WebSockets as it takes. It reconnects with exponential
 * backoff and full jitter, resumes with its token, and gets from the server exactly the messages it missed (and gives
 * the server exactly the ones it missed), in order, once. Runs in browsers and in Node: the WebSocket class is
 * injected (src/client/index.ts for Node, src/client/browser.ts for browsers).
 *
 *   connecting ──welcome──► open ──socket lost──► reconnecting ──timer──► connecting
 *        └───────────────────────── close() / server ended the session ──► closed
 */
import { CLOSE_ABNORMAL, CLOSE_CLIENT_PROTOCOL, CLOSE_NORMAL, CLOSE_PROTOCOL_ERROR } from '../connection/close-codes.js';
import { HotlineError, type ErrorCode } from '../errors.js';
import { decodeFrame, encodeMessage, type Payload, SESSION_PROTOCOL } from '../session/protocol.js';
import { backoffDelay, type BackoffOptions, DEFAULT_BACKOFF } from './backoff.js';
import { Emitter } from './emitter.js';

/** The part of the WebSocket API the client uses: the browser's and `ws`' both have it. */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  binaryType: string;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface ClientOptions {
  /** The WebSocket class. Default: the global one (browsers); the Node entry passes `ws`. */
  WebSocket?: WebSocketConstructor;
  /** Reconnect delays. Default: 250 ms doubling up to 10 s, each a uniform draw below the cap (full jitter). */
  backoff?: BackoffOptions;
  /** Messages sent and not yet acknowledged by the server (including those queued while disconnected). Default 1 000. */
  maxQueue?: number;
  /** How long to wait before acknowledging received messages, in ms (acks are cumulative). Default 20. */
  ackInterval?: number;
  /** A connect that has not been welcomed within this many ms is abandoned and retried. Default 10 000. */
  connectTimeout?: number;
  /** Resume a session kept from an earlier client (e.g. across a page reload): its `token` and `received`. */
  resume?: { token: string; received: number };
  /** Random source in [0, 1) for jitter; injectable for tests. */
  random?: () => number;
}

export interface ClientEvents {
  /** A new session started (the first connect, or after a lost session). */
  open: [info: { token: string }];
  /** A message from the server, in order, exactly once. */
  message: [data: Payload];
  /** The socket is gone; the next attempt follows after `delay` ms. */
  reconnecting: [info: { attempt: number; delay: number; code: number; reason: string }];
  /** The session resumed: `replayed` messages follow from the server, `resent` were sent again to it. */
  resumed: [info: { replayed: number; resent: number }];
  /** The session could not be resumed: a new one started. `unacked` are the messages the old one may not have seen. */
  'lost-session': [info: { code: ErrorCode; message: string; unacked: Payload[] }];
  /**
   * The server dropped a message this client sent, without handling it: `code` HOTLINE_E_POISON_MESSAGE (it was in
   * flight when two server workers died, so it is never replayed a third time). `data` is the message.
   */
  dropped: [info: { code: ErrorCode; message: string; data: Payload }];
  /** For good: close() was called, the server ended the session, or it does not speak the protocol. */
  close: [info: { code: number; reason: string; error?: HotlineError }];
}

type Timer = ReturnType<typeof setTimeout>;

/**
 * A session client. Create one with `connect()` from `hotline/client`.
 */
export class HotlineClient extends Emitter<ClientEvents> {
  #url: string | (() => string);
  #WS: WebSocketConstructor;
  #backoff: Required<BackoffOptions>;
  #maxQueue: number;
  #ackInterval: number;
  #connectTimeout: number;
  #random: () => number;
  #state: ClientState = 'connecting';
  #ws: WebSocketLike | undefined;
  /** True once the current socket got its welcome. */
  #ready = false;
  #token: string | null = null;
  #inSeq = 0;
  #ackedSent = 0;
  #outSeq = 0;
  #out: Array<[number, Payload]> = [];
  #attempt = 0;
  #hint: number | undefined;
  #ended = false;
  #reconnectTimer: Timer | undefined;
  #connectTimer: Timer | undefined;
  #ackTimer: Timer | undefined;

  constructor(url: string | (() => string), WS: WebSocketConstructor, options: ClientOptions = {}) {
    super();
    this.#url = url;
    this.#WS = WS;
    this.#backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.#maxQueue = options.maxQueue ?? 1000;
    this.#ackInterval = options.ackInterval ?? 20;
    this.#connectTimeout = options.connectTimeout ?? 10_000;
    this.#random = options.random ?? Math.random;
    if (options.resume) {
      this.#token = options.resume.token;
      this.#inSeq = this.#ackedSent = options.resume.received;
    }
    this.#connect();
  }

  get state(): ClientState {
    return this.#state;
  }

  /** The resume token of the current session (null before the first welcome). Keep it to resume after a reload. */
  get token(): string | null {
    return this.#token;
  }

  /** The seq of the last message received: pass it with the token in `resume`. */
  get received(): number {
    return this.#inSeq;
  }

  /** Messages sent or queued that the server has not acknowledged yet. */
  get queued(): number {
    return this.#out.length;
  }

  /**
   * Send a message. While disconnected it is queued and sent on resume. Throws HOTLINE_E_CLIENT_QUEUE_FULL when
   * `maxQueue` messages are unacknowledged, HOTLINE_E_CLIENT_CLOSED after close.
   */
  send(data: Payload): void {
    if (this.#state === 'closed') throw new HotlineError('HOTLINE_E_CLIENT_CLOSED');
    if (typeof data !== 'string' && !(data instanceof Uint8Array)) throw new TypeError('send() takes a string or a Uint8Array');
    if (this.#out.length >= this.#maxQueue) {
      throw new HotlineError('HOTLINE_E_CLIENT_QUEUE_FULL', `${this.#out.length} messages are waiting for the server's acknowledgement (maxQueue ${this.#maxQueue})`);
    }
    const seq = ++this.#outSeq;
    this.#out.push([seq, data]);
    if (this.#ready) this.#ws!.send(encodeMessage(seq, data));
  }

  /** Close for good. Idempotent. */
  close(code = CLOSE_NORMAL, reason = ''): void {
    if (this.#state === 'closed') return;
    const ws = this.#ws;
    // Tell the server the session is over, so it ends now instead of waiting out its TTL for us.
    if (this.#ready) ws!.send(JSON.stringify({ t: 'end' }));
    this.#finish({ code, reason });
    ws?.close(code, reason);
  }

  #connect(): void {
    this.#reconnectTimer = undefined;
    if (this.#state === 'closed') return;
    this.#state = 'connecting';
    let ws: WebSocketLike;
    try {
      ws = new this.#WS(typeof this.#url === 'function' ? this.#url() : this.#url, [SESSION_PROTOCOL]);
    } catch {
      return this.#retry(CLOSE_ABNORMAL, 'connect failed');
    }
    this.#ws = ws;
    ws.binaryType = 'arraybuffer';
    this.#connectTimer = setTimeout(() => ws.close(), this.#connectTimeout);
    ws.onopen = () => {
      if (ws !== this.#ws) return;
      if (ws.protocol !== SESSION_PROTOCOL) {
        const error = new HotlineError('HOTLINE_E_CLIENT_UNSUPPORTED');
        ws.close(CLOSE_NORMAL, 'no session protocol');
        return this.#finish({ code: CLOSE_PROTOCOL_ERROR, reason: error.message, error });
      }
      ws.send(JSON.stringify({ t: 'hello', v: 1, token: this.#token, rx: this.#inSeq }));
    };
    ws.onmessage = (ev) => this.#onFrame(ws, ev.data);
    ws.onclose = (ev) => this.#onClose(ws, ev.code, ev.reason);
    ws.onerror = () => undefined; // a close event follows
  }

  #onFrame(ws: WebSocketLike, data: unknown): void {
    if (ws !== this.#ws) return;
    // Total (protocol.ts): whatever a hostile server sends, a frame or a coded error comes back, never a throw.
    const f = typeof data === 'string' ? decodeFrame(data) : undefined;
    if (f === undefined || f instanceof HotlineError) return this.#protocolError(ws);
    switch (f.t) {
      case 'welcome':
        return this.#welcome(ws, f.token, f.rx, f.resumed, f.replay, f.lost);
      case 'm': {
        if (!this.#ready) return this.#protocolError(ws);
        if (f.s <= this.#inSeq) return; // a replay of something already delivered
        // A gap would be silent loss: drop the socket, and the resume replays from what we really have.
        if (f.s !== this.#inSeq + 1) return this.#protocolError(ws);
        this.#inSeq = f.s;
        this.#scheduleAck();
        this.emit('message', f.data);
        return;
      }
      case 'a':
        return this.#trim(f.a);
      case 'reconnect':
        this.#hint = f.delay;
        return;
      case 'end':
        this.#ended = true;
        return;
      case 'drop': {
        if (!this.#ready) return this.#protocolError(ws);
        const i = this.#out.findIndex(([seq]) => seq === f.s);
        // Not one this client has unacknowledged: nothing of its own to report (an ack already covered it).
        if (i === -1) return;
        const [[, data]] = this.#out.splice(i, 1) as [[number, Payload]];
        this.emit('dropped', { code: f.code, message: f.message, data });
        return;
      }
      default:
        return this.#protocolError(ws);
    }
  }

  #welcome(ws: WebSocketLike, token: string, rx: number, resumed: boolean, replay: number, lost: { code: ErrorCode; message: string } | null): void {
    clearTimeout(this.#connectTimer);
    this.#attempt = 0;
    this.#hint = undefined;
    const hadSession = this.#token !== null;
    this.#token = token;
    this.#ready = true;
    this.#state = 'open';
    if (resumed && rx <= this.#outSeq) {
      this.#trim(rx);
      this.#ackedSent = this.#inSeq;
      // Every resume rotates the token (this welcome carries the next one): saying anything at once tells the server
      // this client has it, so the token just used is refused from now on, even to a client that kept a copy.
      ws.send(JSON.stringify({ t: 'a', a: this.#inSeq }));
      for (const [seq, data] of this.#out) ws.send(encodeMessage(seq, data));
      this.emit('resumed', { replayed: replay, resent: this.#out.length });
      return;
    }
    if (hadSession) {
      const unacked = this.#out.map(([, d]) => d);
      this.#out = [];
      this.#outSeq = 0;
      this.#inSeq = this.#ackedSent = 0;
      const code = lost?.code ?? 'HOTLINE_E_SESSION_PROTOCOL';
      this.emit('lost-session', { code, message: lost?.message ?? 'the server acknowledged messages this client never sent', unacked });
    } else {
      // Queued before the first session: they belong to this one.
      for (const [seq, data] of this.#out) ws.send(encodeMessage(seq, data));
    }
    if (this.#state === 'open') this.emit('open', { token });
  }

  #onClose(ws: WebSocketLike, code: number, reason: string): void {
    if (ws !== this.#ws) return;
    this.#ws = undefined;
    this.#ready = false;
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
    if (this.#state === 'closed') return;
    if (this.#ended) return this.#finish({ code, reason });
    this.#retry(code, reason);
  }

  #retry(code: number, reason: string): void {
    this.#attempt++;
    // A shutdown's hint says when to come back; the draw below it spreads the crowd (the Phoenix drainer's idea).
    const delay = this.#hint !== undefined ? Math.floor(this.#random() * this.#hint) : backoffDelay(this.#attempt, this.#backoff, this.#random);
    this.#hint = undefined;
    this.#state = 'reconnecting';
    this.emit('reconnecting', { attempt: this.#attempt, delay, code, reason });
    if (this.#state !== 'reconnecting') return; // a listener closed the client
    this.#reconnectTimer = setTimeout(() => this.#connect(), delay);
  }

  #finish(info: { code: number; reason: string; error?: HotlineError }): void {
    this.#state = 'closed';
    this.#ready = false;
    this.#ws = undefined;
    clearTimeout(this.#reconnectTimer);
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#ackTimer);
    this.emit('close', info);
  }

  #protocolError(ws: WebSocketLike): void {
    ws.close(CLOSE_CLIENT_PROTOCOL, 'session protocol error');
  }

  #trim(acked: number): void {
    let n = 0;
    while (n < this.#out.length && this.#out[n]![0] <= acked) n++;
    if (n > 0) this.#out.splice(0, n);
  }

  #scheduleAck(): void {
    if (this.#inSeq - this.#ackedSent >= 256) return this.#flushAck();
    this.#ackTimer ??= setTimeout(() => this.#flushAck(), this.#ackInterval);
  }

  #flushAck(): void {
    clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
    if (!this.#ready || this.#inSeq <= this.#ackedSent) return;
    this.#ackedSent = this.#inSeq;
    this.#ws!.send(JSON.stringify({ t: 'a', a: this.#inSeq }));
  }
}
