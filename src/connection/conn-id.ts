/**
 * Connection ids: `<prefix>-<counter>`, a random prefix drawn once per process (10 characters of base32, 50 bits from
 * `crypto`) and a base-36 counter. The prefix makes ids unique across processes and machines (the cluster routes
 * by them; DESIGN.md §9) without coordination; the counter makes each one cost a string concatenation. An id is
 * given once, when the client connects, and then travels with the connection: through a process upgrade (the
 * transfer carries it) and a session restore (the session record does), so a plugin may key its state by it.
 *
 * The alphabet, [0-9a-v] and `-`, is safe in a URL path, a NATS subject token, a file name and a log line.
 * Two processes share a prefix with probability ~n²/2^51 for n processes: 10^5 of them over a fleet's life, ~4·10^-6.
 */
import { randomBytes } from 'node:crypto';

const PREFIX_CHARS = 10;
const BASE32 = '0123456789abcdefghijklmnopqrstuv';
/** What {@link isConnectionId} accepts: ours, and room for a later format of the same alphabet. */
const ID_PATTERN = /^[0-9a-z]{1,32}-[0-9a-z]{1,16}$/;

function drawPrefix(): string {
  // 5 bits per character from one byte each: no modulo bias, since 32 divides 256.
  const bytes = randomBytes(PREFIX_CHARS);
  let s = '';
  for (const b of bytes) s += BASE32[b & 31];
  return s;
}

const prefix = drawPrefix() + '-';
let counter = 0;

/** A new id, unique across processes. */
export function newConnectionId(): string {
  return prefix + (++counter).toString(36);
}

/** True for a string shaped like a connection id: what an id read from a transfer or a session record must be. */
export function isConnectionId(v: unknown): v is string {
  return typeof v === 'string' && ID_PATTERN.test(v);
}

