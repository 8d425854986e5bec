/**
 * Per-IP admission (issue 9 item 6): how many sockets one IP address may hold at once (`maxConnectionsPerIp`), and
 * how many handshakes it may start per second (`handshakeRatePerIp`, a token bucket that holds one second's worth, so
 * a burst of that size passes and a sustained flood gets that rate). Both are off by default: behind a proxy or a
 * carrier-grade NAT thousands of honest clients share one address, and `limits.maxConnections` already bounds the
 * total. A directly exposed host turns them on (docs/reliability.md suggests values).
 *
 * The transports ask before they do any work for a socket (WS: before the upgrade, TCP: at accept), so a refusal
 * costs a Map lookup, and a rate refusal is answered after a hold (refusal-hold.ts), so a client that retries at once
 * is slowed by its own wait instead of costing the host a parse and an answer per try. The clock is injected (`deps.now`), so the bucket's refill is tested without waiting.
 *
 * Memory is bounded too: an address is tracked while it holds sockets or its bucket is not full, and at most
 * `maxTracked` addresses are; past that, the bucket longest untouched is forgotten (it restarts full, which favours
 * the client, never refuses one wrongly).
 */
import { HotlineError } from '../errors.js';
import { type HoldableSocket, RefusalHold } from './refusal-hold.js';

export interface AdmissionLimits {
  /** Sockets one address may hold at once. Infinity: no limit. */
  maxConnectionsPerIp: number;
  /** Handshakes one address may start per second (and in a burst). Infinity: no limit. */
  handshakeRatePerIp: number;
}

export interface AdmissionDeps {
  /** Milliseconds, monotonic. */
  now(): number;
}

/** Why a socket was refused; the transport answers WS `429` for `rate` and `503` for `connections`, TCP closes. */
export type Refusal = 'connections' | 'rate';

/** What admission needs of a socket: to hear when it closes. */
export interface ClosableSocket {
  once(event: 'close', listener: () => void): unknown;
}

interface Entry {
  /** Sockets held now. */
  open: number;
  /** Handshake tokens left, refilled at `rate` per second up to `rate`. */
  tokens: number;
  /** When `tokens` was last brought up to date. */
  at: number;
}

const DEFAULT_MAX_TRACKED = 100_000;

/** The key an address is counted under: IPv4-mapped IPv6 (`::ffff:1.2.3.4`) is the same client as `1.2.3.4`. */
export function ipKey(remoteAddress: string | undefined): string {
  const a = remoteAddress ?? '';
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

export class Admission {
  readonly limits: AdmissionLimits;
  #deps: AdmissionDeps;
  #maxTracked: number;
  /** Insertion order is touch order (entries are re-inserted on use): the first is the one untouched longest. */
  #entries = new Map<string, Entry>();
  refusedConnections = 0;
  refusedRate = 0;

  constructor(limits: AdmissionLimits, deps: AdmissionDeps = { now: () => performance.now() }, maxTracked = DEFAULT_MAX_TRACKED) {
    this.limits = limits;
    this.#deps = deps;
    this.#maxTracked = maxTracked;
  }

  /** True when neither limit is set: the transports skip admission entirely. */
  get off(): boolean {
    return this.limits.maxConnectionsPerIp === Infinity && this.limits.handshakeRatePerIp === Infinity;
  }

  /** Addresses tracked now (for tests and status). */
  get tracked(): number {
    return this.#entries.size;
  }

  /** Sockets `remoteAddress` holds now. */
  openFor(remoteAddress: string): number {
    return this.#entries.get(ipKey(remoteAddress))?.open ?? 0;
  }

  /**
   * Admit one more socket from `remoteAddress`, or say why not. An admitted socket is counted until its 'close'.
   * The rate is checked first: a refused handshake spends no token, so a flood cannot starve the address further.
   */
  admit(remoteAddress: string | undefined, socket: ClosableSocket): Refusal | undefined {
    if (this.off) return undefined;
    const key = ipKey(remoteAddress);
    const now = this.#deps.now();
    const { maxConnectionsPerIp, handshakeRatePerIp: rate } = this.limits;
    let e = this.#entries.get(key);
    if (e) {
      this.#entries.delete(key);
      if (rate !== Infinity) e.tokens = Math.min(rate, e.tokens + ((now - e.at) / 1000) * rate);
      e.at = now;
    } else {
      e = { open: 0, tokens: rate, at: now };
    }
    this.#entries.set(key, e);
    if (rate !== Infinity && e.tokens < 1) {
      this.refusedRate++;
      this.#trim();
      return 'rate';
    }
    if (e.open >= maxConnectionsPerIp) {
      this.refusedConnections++;
      return 'connections';
    }
    if (rate !== Infinity) e.tokens -= 1;
    this.#count(key, e, socket);
    this.#trim();
    return undefined;
  }

  /** Count a refused socket the host holds before answering (refusal-hold.ts) against its address until it closes. */
  countHeld(remoteAddress: string | undefined, socket: ClosableSocket): void {
    const key = ipKey(remoteAddress);
    const e = this.#entries.get(key);
    if (e) this.#count(key, e, socket);
  }

  #count(key: string, e: Entry, socket: ClosableSocket): void {
    e.open++;
    socket.once('close', () => this.#release(key, e));
  }

  #release(key: string, e: Entry): void {
    e.open--;
    // Forget an address that holds nothing and whose bucket is full again (or that has no bucket).
    if (e.open === 0 && this.#entries.get(key) === e && this.#full(e)) this.#entries.delete(key);
  }

  #full(e: Entry): boolean {
    const rate = this.limits.handshakeRatePerIp;
    return rate === Infinity || e.tokens + ((this.#deps.now() - e.at) / 1000) * rate >= rate;
  }

  /** Keep at most maxTracked addresses by forgetting those untouched longest that hold no socket. */
  #trim(): void {
    if (this.#entries.size <= this.#maxTracked) return;
    for (const [key, e] of this.#entries) {
      if (this.#entries.size <= this.#maxTracked) return;
      if (e.open === 0) this.#entries.delete(key);
    }
  }
}

/**
 * What a transport asks of admission, when a per-IP limit is on: `check` before any work is done for a socket, and
 * `refuse` to answer a refusal, at once or after the hold (refusal-hold.ts).
 */
export interface Admit {
  /** A refusal, or undefined to go on (the socket is then counted until its 'close'). */
  check(remoteAddress: string | undefined, socket: ClosableSocket): Refusal | undefined;
  /**
   * Answer a refusal: `answer` runs at once for 'connections', and after the hold's delay for 'rate' while the hold
   * has room (the held socket counts against its address meanwhile).
   */
  refuse(refused: Refusal, remoteAddress: string | undefined, socket: ClosableSocket & HoldableSocket, answer: () => void): void;
  /** Answer every held refusal now (the listener is stopping). */
  close(): void;
}

/** How often refusals are reported at most: a flood must not turn into a flood of log lines. */
const REPORT_EVERY_MS = 1000;
/** How long a rate refusal is held: the `Retry-After: 1` the WS answer announces. */
export const HOLD_MS = 1000;
/** Sockets held at most, in all: past that, refusals are answered at once. */
export const MAX_HELD = 1024;

/**
 * The host's admission check with its reporting: each refusal is counted, and reported as HOTLINE_E_IP_LIMIT at most
 * once a second (with the count since the last report). Undefined when both limits are off.
 */
export function createAdmit(
  limits: AdmissionLimits,
  report: (err: HotlineError) => void,
  deps?: AdmissionDeps,
  hold: RefusalHold = new RefusalHold(HOLD_MS, MAX_HELD),
): Admit | undefined {
  const a = new Admission(limits, deps);
  if (a.off) return undefined;
  const now = deps?.now ?? (() => performance.now());
  let lastReport = -Infinity;
  let unreported = 0;
  const refused = (why: Refusal, remoteAddress: string | undefined): void => {
    unreported++;
    const t = now();
    if (t - lastReport >= REPORT_EVERY_MS) {
      const what =
        why === 'rate'
          ? `over limits.handshakeRatePerIp (${limits.handshakeRatePerIp}/s)`
          : `over limits.maxConnectionsPerIp (${limits.maxConnectionsPerIp} open)`;
      report(new HotlineError('HOTLINE_E_IP_LIMIT', `refused a connection from ${remoteAddress ?? 'an unknown address'}: ${what}; ${unreported} refused since the last report`));
      lastReport = t;
      unreported = 0;
    }
  };
  return {
    check(remoteAddress, socket) {
      const why = a.admit(remoteAddress, socket);
      if (why) refused(why, remoteAddress);
      return why;
    },
    refuse(why, remoteAddress, socket, answer) {
      if (why === 'rate' && hold.hold(socket, answer)) a.countHeld(remoteAddress, socket);
      else answer();
    },
    close: () => hold.close(),
  };
}
