/**
 * issue 12: a canary in progress. It routes a share of new connections to the canary version, and judges its handler
 * error rate against the stable version's over the same span: both counted from the canary's start, so a stable
 * version's old errors neither excuse nor condemn the canary. Judged at each canary error (a bad canary is caught as
 * soon as it has `minErrors`) and once at the end of the window.
 */
import type { Connection } from '../connection/connection.js';
import type { DispatchTarget, Router } from '../connection/dispatcher.js';
import type { Link } from '../connection/link.js';
import type { VersionRuntime } from '../runtime/version-runtime.js';
import type { Policy } from './reload-policy.js';

type CanaryPolicy = Extract<Policy, { kind: 'canary' }>;

export type CanaryVerdict = 'over-budget' | 'promote' | 'hold';

export interface CanaryDeps {
  /** A number in [0, 1): which new connections are the canary's share. */
  random(): number;
  /** Called once, at the first verdict other than `hold`. */
  decided(verdict: Exclude<CanaryVerdict, 'hold'>): void;
}

export class Canary {
  readonly version: VersionRuntime;
  /** The version new connections get when not the canary's share: replaced only by a restore (replaceStable). */
  stable: VersionRuntime;
  readonly policy: CanaryPolicy;
  readonly startedAt = Date.now();
  #stableAt: { messages: number; errors: number };
  #deps: CanaryDeps;
  #timer: NodeJS.Timeout | undefined;
  #decided = false;
  /** The window ended within budget with `promote: 'manual'`: waiting for a command. */
  windowEnded = false;

  constructor(version: VersionRuntime, stable: VersionRuntime, policy: CanaryPolicy, deps: CanaryDeps) {
    this.version = version;
    this.stable = stable;
    this.policy = policy;
    this.#deps = deps;
    this.#stableAt = { messages: stable.stats.messages, errors: stable.stats.errors };
    this.#timer = setTimeout(this.#windowEnd, policy.window);
    this.#timer.unref();
  }

  /** The router the dispatcher uses while the canary runs. Shared and bound: one closure per canary. */
  readonly route: Router = (link: Link): DispatchTarget => {
    const match = this.policy.match;
    if (match) {
      // A TCP connection and a session have no upgrade request here: the predicate sees their remote address.
      const h = link.handshake ?? { transport: link.transport, remoteAddress: link.remoteAddress, headers: {}, url: '' };
      try {
        return match(h) ? this.version : this.stable;
      } catch {
        // A throwing predicate must not refuse the connection: it goes to the version known to work.
        return this.stable;
      }
    }
    return this.#deps.random() < this.policy.share ? this.version : this.stable;
  };

  /**
   * issue 12, worker mode: the stable version failed and a restore replaced it. Its counters start at 0; the span
   * since the canary started goes on from what the failed one had counted.
   */
  replaceStable(next: VersionRuntime): void {
    const old = this.stable.stats;
    this.#stableAt = {
      messages: next.stats.messages - (old.messages - this.#stableAt.messages),
      errors: next.stats.errors - (old.errors - this.#stableAt.errors),
    };
    this.stable = next;
  }

  /** Error rates since the canary started. */
  rates(): { canary: number; stable: number } {
    const c = this.version.stats;
    const s = this.stable.stats;
    const sm = s.messages - this.#stableAt.messages;
    const se = s.errors - this.#stableAt.errors;
    return { canary: c.errors / Math.max(c.messages, 1), stable: se / Math.max(sm, 1) };
  }

  /** The verdict now; `over-budget` needs `minErrors` canary errors. */
  judge(): CanaryVerdict {
    const { canary, stable } = this.rates();
    if (this.version.stats.errors >= this.policy.minErrors && canary - stable > this.policy.maxErrorRate) return 'over-budget';
    return this.windowEnded && this.policy.autoPromote ? 'promote' : 'hold';
  }

  /** A canary handler failed: judge at once. */
  report(): void {
    this.#decide(this.judge());
  }

  /** Is `conn` on the canary? */
  owns(conn: Connection): boolean {
    return conn.runtime === this.version;
  }

  stop(): void {
    this.#decided = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #windowEnd = (): void => {
    this.#timer = undefined;
    this.windowEnded = true;
    this.#decide(this.judge());
  };

  #decide(v: CanaryVerdict): void {
    if (this.#decided || v === 'hold') return;
    this.#decided = true;
    clearTimeout(this.#timer);
    this.#deps.decided(v);
  }
}
