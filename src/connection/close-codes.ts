/**
 * Every WebSocket close code hotline itself sends or reports (RFC 6455 §7.4.1 and the IANA registry), and the one
 * check of a code and reason a plugin passes to `conn.close()`. A TCP stream has no close frame: its code is
 * informational (it reaches onClose), but it is checked the same way, so a plugin behaves alike on both transports.
 *
 * Pure constants and functions: the client library (browsers too) imports this file.
 */

/** Normal closure: the session or the stream is done. */
export const CLOSE_NORMAL = 1000;
/** Going away: a session whose TTL ran out while its client was away. */
export const CLOSE_GOING_AWAY = 1001;
/** Protocol error: a malformed session frame, no hello. */
export const CLOSE_PROTOCOL_ERROR = 1002;
/** Reported, never sent: no close frame arrived (the socket dropped, a TCP stream that errored, a terminate). */
export const CLOSE_ABNORMAL = 1006;
/** Policy violation: a slow consumer, an inbound overflow, a partial frame that stalled or broke the budget. */
export const CLOSE_POLICY = 1008;
/**
 * How long a peer closed with CLOSE_POLICY gets to finish the close handshake before its socket is destroyed: one
 * that does not read (a slow consumer), or whose close frame waits behind a partial frame, may never finish it.
 */
export const POLICY_CLOSE_GRACE_MS = 1000;
/** Message too big: over maxPayload (ws sends it itself for WebSocket). */
export const CLOSE_TOO_BIG = 1009;
/** Internal error: the session store failed during a hello. */
export const CLOSE_INTERNAL_ERROR = 1011;
/** Service restart: shutdown and upgrade send-aways; the client should reconnect (and resume). */
export const CLOSE_SERVICE_RESTART = 1012;
/** Try again later: the host has too many handshakes waiting for their turn (src/transport/handshake-pacer.ts). */
export const CLOSE_TRY_AGAIN_LATER = 1013;
/** The client library's own code for a server that broke the session protocol (private-use range). */
export const CLOSE_CLIENT_PROTOCOL = 4000;

/** Longest close reason a close frame carries: a control frame's 125 bytes minus the 2-byte code. */
export const MAX_CLOSE_REASON_BYTES = 123;

/**
 * True for a code an endpoint may send in a close frame: 1000–1014 except 1004 (reserved), 1005 and 1006 (reported
 * only, never sent), and 3000–4999 (registered and private use). The same rule as ws' `isValidStatusCode`, checked
 * here first so that an invalid code throws before the connection changes phase (a half-closed zombie otherwise).
 */
export function isSendableCloseCode(code: number): boolean {
  if (!Number.isInteger(code)) return false;
  return (code >= 1000 && code <= 1014 && (code < 1004 || code > 1006)) || (code >= 3000 && code <= 4999);
}

/**
 * Why `code` and `reason` cannot be sent, or undefined when they can: a code outside {@link isSendableCloseCode}, a
 * reason that is not a string or is longer than {@link MAX_CLOSE_REASON_BYTES} bytes of UTF-8.
 */
export function closeFrameProblem(code: unknown, reason: unknown): string | undefined {
  if (typeof code !== 'number' || !isSendableCloseCode(code)) {
    return `close code ${String(code)} cannot be sent: use 1000–1003, 1007–1014 or 3000–4999`;
  }
  if (typeof reason !== 'string') return `close reason must be a string, got ${typeof reason}`;
  // Bytes, not characters: the limit is the frame's. A short string of emoji is over it.
  if (reason.length > MAX_CLOSE_REASON_BYTES / 3 && utf8Bytes(reason) > MAX_CLOSE_REASON_BYTES) {
    return `close reason is ${utf8Bytes(reason)} bytes of UTF-8, over ${MAX_CLOSE_REASON_BYTES}`;
  }
  return undefined;
}

/** UTF-8 length without Buffer, so this file also runs in a browser; a lone surrogate counts as U+FFFD (3 bytes). */
function utf8Bytes(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}
