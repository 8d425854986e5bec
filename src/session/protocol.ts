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
 */

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
export type Frame = HelloFrame | WelcomeFrame | MessageFrame | AckFrame | ReconnectFrame | EndFrame;

/** A message payload as the application sees it. */
export type Payload = string | Uint8Array;

// btoa/atob exist in browsers and in Node >= 16, so one codec serves both sides.
function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function fromBase64(b64: string): Uint8Array {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** Encode one sequenced message. */
export function encodeMessage(seq: number, data: Payload): string {
  return typeof data === 'string' ? JSON.stringify({ t: 'm', s: seq, d: data }) : JSON.stringify({ t: 'm', s: seq, b: toBase64(data) });
}

/** The payload of a message frame. */
export function messagePayload(f: MessageFrame): Payload {
  return f.b !== undefined ? fromBase64(f.b) : (f.d ?? '');
}

function isSeq(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/** Parse and validate one frame; undefined when it is not a well-formed frame of this protocol. */
export function decodeFrame(text: string): Frame | undefined {
  let f: unknown;
  try {
    f = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (f === null || typeof f !== 'object') return undefined;
  const o = f as Record<string, unknown>;
  switch (o.t) {
    case 'm':
      return isSeq(o.s) && o.s > 0 && (typeof o.d === 'string' || typeof o.b === 'string') ? (o as unknown as MessageFrame) : undefined;
    case 'a':
      return isSeq(o.a) ? (o as unknown as AckFrame) : undefined;
    case 'hello':
      return o.v === 1 && isSeq(o.rx) && (o.token === null || typeof o.token === 'string') ? (o as unknown as HelloFrame) : undefined;
    case 'welcome':
      return typeof o.token === 'string' && isSeq(o.rx) && typeof o.resumed === 'boolean' && isSeq(o.replay) ? (o as unknown as WelcomeFrame) : undefined;
    case 'reconnect':
      return isSeq(o.delay) ? (o as unknown as ReconnectFrame) : undefined;
    case 'end':
      return o as unknown as EndFrame;
    default:
      return undefined;
  }
}
