/**
 * Reconnect delays: exponential backoff with full jitter (a uniform draw in [0, cap]), which spreads a crowd of
 * clients that lost the same server instead of bringing them back in lockstep.
 */
export interface BackoffOptions {
  /** Cap of the first attempt, in ms. Default 250. */
  initialDelay?: number;
  /** Largest cap, in ms. Default 10 000. */
  maxDelay?: number;
  /** Growth of the cap per attempt. Default 2. */
  factor?: number;
}

export const DEFAULT_BACKOFF: Required<BackoffOptions> = { initialDelay: 250, maxDelay: 10_000, factor: 2 };

/** The delay before reconnect attempt `attempt` (1-based). `random` is injectable for tests. */
export function backoffDelay(attempt: number, o: Required<BackoffOptions>, random: () => number = Math.random): number {
  const cap = Math.min(o.maxDelay, o.initialDelay * o.factor ** Math.max(0, attempt - 1));
  return Math.floor(random() * cap);
}
