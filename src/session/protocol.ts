/**
 * The session protocol, `hotline.v1`: what client and server say to each other over one WebSocket when the client
 * opts in with that subprotocol. Shared by the server (src/session) and the client (src/client), so it must stay
 * free of Node imports: the browser bundle includes it.
 *
 * Every frame is one JSON text frame:
 *   C→S  hello     { t:'hello', v:1, token, rx }       first frame; rx = last server seq the client received
 *   S→C  welcome   { t:'welcome', token, rx, resumed, replay, lost }  rx = last client seq the server has handled
 *   both message   { t:'m', s, d } (text) or { t:'m', s, b } (binary, base64)
 *   both ack       { t:'a', a }                         cumulative: every seq <= a is safe, drop it from the buffer
 *   S→C  reconnect { t:'reconnect', delay }             graceful shutdown: come back after about `delay` ms
 *   both end       { t:'end' }                          the session is over (plugin or client closed it): no resume
 *   S→C  drop      { t:'drop', s, code, message }       client message s was dropped, never handled (issue 11: a
 *                                                       poison message, HOTLINE_E_POISON_MESSAGE); an ack follows
 */

import { HotlineError } from '../errors.js';

/** The WebSocket subprotocol a session client offers. A client that does not offer it is served as plain WS. */
export const SESSION_PROTOCOL = 'hotline.v1';

/** Why a session could not be resumed, as sent in `welcome.lost`. */
export type LostCode = 'HOTLINE_E_SESSION_EXPIRED' | 'HOTLINE_E_SESSION_UNKNOWN' | 'HOTLINE_E_SESSION_TOKEN' | 'HOTLINE_E_SESSION_OVERFLOW' | 'HOTLINE_E_SESSION_PROTOCOL';

export interface HelloFrame {
  t: 'hello';
  v: 1;
  token: string | null;
  rx: number;
}
export interface WelcomeFrame {
  t: 'welcome';
  token: string;
  rx: number;
  resumed: boolean;
  /** How many buffered messages follow this frame. */
  replay: number;
  lost: { code: LostCode; message: string } | null;
}
export interface MessageFrame {
  t: 'm';
  s: number;
  d?: string;
  b?: string;
}
export interface AckFrame {
  t: 'a';
  a: number;
}
export interface ReconnectFrame {
  t: 'reconnect';
  delay: number;
}
export interface EndFrame {
  t: 'end';
}
/** Why a client message was dropped unhandled, as sent in `drop.code`. */
export type DropCode = 'HOTLINE_E_POISON_MESSAGE';
export interface DropFrame {
  t: 'drop';
  s: number;
  code: DropCode;
  message: string;
}
export type Frame = HelloFrame | WelcomeFrame | MessageFrame | AckFrame | ReconnectFrame | EndFrame | DropFrame;

/** A message payload as the application sees it. */
export type Payload = string | Uint8Array;

/** A message frame as it arrives: its payload already decoded (text, or the bytes of its base64). */
export interface ReceivedMessage {
  t: 'm';
  s: number;
  data: Payload;
}

/** What `decodeFrame` returns for a well-formed frame: every frame as sent, except a message carries its payload. */
export type ReceivedFrame = HelloFrame | WelcomeFrame | ReceivedMessage | AckFrame | ReconnectFrame | EndFrame | DropFrame;

/**
 * The longest token accepted: tokens hotline issues are ~70 characters (token.ts). A longer one is refused before it
 * reaches the HMAC check, so a hello cannot make the server hash a megabyte.
 */
export const MAX_TOKEN_LENGTH = 1024;
/** The longest `lost.message` a client accepts from a server; hotline's own are under 100 characters. */
const MAX_LOST_MESSAGE = 1024;
/** The largest reconnect delay: setTimeout fires at once (with a warning) above 2^31 − 1 ms. */
const MAX_DELAY = 0x7fffffff;

const LOST_CODES: ReadonlySet<string> = new Set<LostCode>([
  'HOTLINE_E_SESSION_EXPIRED',
  'HOTLINE_E_SESSION_UNKNOWN',
  'HOTLINE_E_SESSION_TOKEN',
  'HOTLINE_E_SESSION_OVERFLOW',
  'HOTLINE_E_SESSION_PROTOCOL',
]);

/**
 * Canonical base64: the standard alphabet, whole quanta of 4, `=` padding only at the end. `atob` is more forgiving
 * (it skips whitespace and accepts missing padding) and throws on anything else: issue 9 found that `{"b":"!"}`
 * thrown from inside a ws 'message' listener killed the worker. Checked here first, so `atob` never sees bad input.
 * Linear: no group of the pattern can match the same characters two ways.
 */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

// btoa/atob exist in browsers and in Node >= 16, so one codec serves both sides.
function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/** The bytes of a base64 string, or undefined when it is not canonical base64. */
export function fromBase64(b64: string): Uint8Array | undefined {
  if (!BASE64.test(b64)) return undefined;
  let s: string;
  try {
    s = atob(b64);
  } catch {
    return undefined; // unreachable after the pattern; kept so decoding stays total whatever atob does
  }
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** Encode one sequenced message. */
export function encodeMessage(seq: number, data: Payload): string {
  return typeof data === 'string' ? JSON.stringify({ t: 'm', s: seq, d: data }) : JSON.stringify({ t: 'm', s: seq, b: toBase64(data) });
}

/** Encode a drop frame: client message `seq` was dropped, never handled (a poison message). */
export function encodeDrop(seq: number, err: { code: DropCode; message: string }): string {
  return JSON.stringify({ t: 'drop', s: seq, code: err.code, message: err.message });
}

function isSeq(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

function own(o: object, key: string): unknown {
  // Own properties only: a frame never reads through a prototype, so `{"__proto__":…}` or `Object.prototype.t`
  // set by someone else cannot supply a field.
  return Object.prototype.hasOwnProperty.call(o, key) ? (o as Record<string, unknown>)[key] : undefined;
}

function bad(message: string): HotlineError {
  return new HotlineError('HOTLINE_E_SESSION_PROTOCOL', message);
}

/**
 * Parse and validate one frame. Total: it returns a frame or a HOTLINE_E_SESSION_PROTOCOL error, and never throws,
 * whatever `text` is. The frame returned is a new object built from the validated fields only, so unknown keys
 * (ignored, for forward compatibility) and `__proto__` keys never travel further.
 */
export function decodeFrame(text: string): ReceivedFrame | HotlineError {
  if (typeof text !== 'string') return bad('a session frame must be text');
  let f: unknown;
  try {
    f = JSON.parse(text);
  } catch {
    return bad('a session frame must be JSON');
  }
  if (f === null || typeof f !== 'object' || Array.isArray(f)) return bad('a session frame must be a JSON object');
  const t = own(f, 't');
  switch (t) {
    case 'm': {
      const s = own(f, 's');
      if (!isSeq(s) || s === 0) return bad('message frame: s must be an integer >= 1');
      const d = own(f, 'd');
      const b = own(f, 'b');
      if (d !== undefined && b !== undefined) return bad('message frame: both d and b');
      if (typeof d === 'string') return { t, s, data: d };
      if (typeof b !== 'string') return bad('message frame: d must be a string, or b a base64 string');
      const data = fromBase64(b);
      if (!data) return bad('message frame: b is not canonical base64');
      return { t, s, data };
    }
    case 'a': {
      const a = own(f, 'a');
      return isSeq(a) ? { t, a } : bad('ack frame: a must be an integer >= 0');
    }
    case 'hello': {
      const v = own(f, 'v');
      const token = own(f, 'token');
      const rx = own(f, 'rx');
      if (v !== 1) return bad('hello frame: v must be 1');
      if (!isSeq(rx)) return bad('hello frame: rx must be an integer >= 0');
      if (token !== null && (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH)) {
        return bad(`hello frame: token must be null or a string of 1 to ${MAX_TOKEN_LENGTH} characters`);
      }
      return { t, v, token, rx };
    }
    case 'welcome': {
      const token = own(f, 'token');
      const rx = own(f, 'rx');
      const resumed = own(f, 'resumed');
      const replay = own(f, 'replay');
      const lost = own(f, 'lost');
      if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) return bad('welcome frame: bad token');
      if (!isSeq(rx) || !isSeq(replay)) return bad('welcome frame: rx and replay must be integers >= 0');
      if (typeof resumed !== 'boolean') return bad('welcome frame: resumed must be a boolean');
      if (lost === null || lost === undefined) return { t, token, rx, resumed, replay, lost: null };
      if (typeof lost !== 'object' || Array.isArray(lost)) return bad('welcome frame: lost must be null or an object');
      const code = own(lost, 'code');
      const message = own(lost, 'message');
      if (typeof code !== 'string' || !LOST_CODES.has(code)) return bad('welcome frame: lost.code is not a session code');
      if (typeof message !== 'string' || message.length > MAX_LOST_MESSAGE) return bad('welcome frame: lost.message must be a short string');
      return { t, token, rx, resumed, replay, lost: { code: code as LostCode, message } };
    }
    case 'reconnect': {
      const delay = own(f, 'delay');
      return isSeq(delay) && delay <= MAX_DELAY ? { t, delay } : bad(`reconnect frame: delay must be an integer from 0 to ${MAX_DELAY}`);
    }
    case 'end':
      return { t };
    case 'drop': {
      const s = own(f, 's');
      const code = own(f, 'code');
      const message = own(f, 'message');
      if (!isSeq(s) || s === 0) return bad('drop frame: s must be an integer >= 1');
      if (code !== 'HOTLINE_E_POISON_MESSAGE') return bad('drop frame: code is not a drop code');
      if (typeof message !== 'string' || message.length > MAX_LOST_MESSAGE) return bad('drop frame: message must be a short string');
      return { t, s, code, message };
    }
    default:
      return bad(typeof t === 'string' ? `unknown frame type ${JSON.stringify(t.slice(0, 32))}` : 'a session frame needs a string t');
  }
}
