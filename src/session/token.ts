/**
 * Resume tokens: `<session id>.<HMAC-SHA256(secret, id)>`, base64url. The signature is what stops a client from
 * guessing or editing its way into another session: a token whose signature does not verify is refused with
 * HOTLINE_E_SESSION_TOKEN, before the store is even asked.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

function sign(secret: Uint8Array, id: string): string {
  return createHmac('sha256', secret).update(id).digest('base64url');
}

/** A new random session id (128 bits). */
export function newSessionId(): string {
  return randomBytes(16).toString('base64url');
}

export function issueToken(secret: Uint8Array, id: string): string {
  return `${id}.${sign(secret, id)}`;
}

/** The session id of a valid token, or undefined when the token is malformed or its signature does not verify. */
export function verifyToken(secret: Uint8Array, token: string): string | undefined {
  const dot = token.indexOf('.');
  if (dot <= 0 || dot !== token.lastIndexOf('.')) return undefined;
  const id = token.slice(0, dot);
  // Compare the text, not decoded bytes: base64 ignores the low bits of the last character, so decoding would accept
  // a token edited there.
  const given = Buffer.from(token.slice(dot + 1));
  const want = Buffer.from(sign(secret, id));
  return given.length === want.length && timingSafeEqual(given, want) ? id : undefined;
}
