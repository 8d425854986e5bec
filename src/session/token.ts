/**
 * Resume tokens: `<session id>.<generation>.<HMAC-SHA256(secret, "<id>.<generation>")>`, base64url. The signature is
 * what stops a client from guessing or editing its way into another session: a token whose signature does not verify
 * is refused with HOTLINE_E_SESSION_TOKEN, before the store is even asked.
 *
 * The generation is why a token works once (issue 9 item 7): every resume issues the next generation in its welcome,
 * and the store keeps the current one, so a token replayed after its holder resumed is refused. The generation is
 * signed with the id, so it cannot be edited forward either.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

function sign(secret: Uint8Array, text: string): string {
  return createHmac('sha256', secret).update(text).digest('base64url');
}

/** A new random session id (128 bits). */
export function newSessionId(): string {
  return randomBytes(16).toString('base64url');
}

/** A token for generation `gen` (0 for a new session) of session `id`. */
export function issueToken(secret: Uint8Array, id: string, gen = 0): string {
  return `${id}.${gen}.${sign(secret, `${id}.${gen}`)}`;
}

/** What a valid token names. */
export interface TokenClaim {
  id: string;
  gen: number;
}

// Generations are small decimal integers: no sign, no leading zero, no exponent, so each has one spelling.
const GEN = /^(0|[1-9]\d{0,14})$/;

/** The session and generation of a valid token, or undefined when it is malformed or its signature does not verify. */
export function verifyToken(secret: Uint8Array, token: string): TokenClaim | undefined {
  if (typeof token !== 'string' || token.length > 256) return undefined;
  const parts = token.split('.');
  let id: string;
  let gen: number;
  let signed: string;
  if (parts.length === 3 && GEN.test(parts[1]!)) {
    id = parts[0]!;
    gen = Number(parts[1]);
    signed = `${id}.${parts[1]}`;
  } else if (parts.length === 2) {
    // A token issued before generations existed (`<id>.<HMAC(id)>`): it stands for generation 0, so sessions resume
    // across an upgrade from such a version.
    id = parts[0]!;
    gen = 0;
    signed = id;
  } else {
    return undefined;
  }
  if (id.length === 0) return undefined;
  // Compare the text, not decoded bytes: base64 ignores the low bits of the last character, so decoding would accept
  // a token edited there.
  const given = Buffer.from(parts[parts.length - 1]!);
  const want = Buffer.from(sign(secret, signed));
  return given.length === want.length && timingSafeEqual(given, want) ? { id, gen } : undefined;
}
