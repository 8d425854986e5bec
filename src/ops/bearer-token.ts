/**
 * The bearer check of the HTTP admin's JSON API. Compared in constant time: both sides are hashed to 32 bytes first,
 * so neither the token's content nor its length leaks through how long a refusal takes.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export type TokenVerdict = 'ok' | 'missing' | 'wrong';

export class BearerToken {
  #digest: Buffer | undefined;

  /** `token` undefined: no token configured, every request is 'missing'. */
  constructor(token: string | undefined) {
    this.#digest = token === undefined ? undefined : digest(token);
  }

  get configured(): boolean {
    return this.#digest !== undefined;
  }

  /** Judge an `Authorization` header value. */
  check(header: string | undefined): TokenVerdict {
    if (this.#digest === undefined || header === undefined) return 'missing';
    const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
    if (!m) return 'missing';
    return timingSafeEqual(digest(m[1]!), this.#digest) ? 'ok' : 'wrong';
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}
