/**
 * What a connection's opening said, for a canary's `match` (issue 12). In a file of its own: the public types name it,
 * and must not pull link.ts, and with it ws' types, into a user's type check.
 */
import type { TransportKind } from '../plugin/contract.js';

/**
 * issue 12: what a canary's `match` sees of a new connection. `headers` and `url` are a WebSocket's upgrade request
 * (header names lower-case); a TCP connection and a resumed session have the remote address only.
 */
export interface Handshake {
  readonly transport: TransportKind;
  readonly remoteAddress: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The request path and query, e.g. `/?canary=1`; `''` for TCP. */
  readonly url: string;
}
