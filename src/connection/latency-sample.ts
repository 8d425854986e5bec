/**
 * issue 12: handler latency per version, for `status` (p99) and a canary's comparison. One message in
 * SAMPLE_EVERY is timed (two `performance.now()` calls), into a ring of the last RING samples: a fixed 2 KB per
 * version, nothing allocated per message, and the p99 is sorted only when status asks.
 */
export const SAMPLE_EVERY = 16;
const RING = 256;

export class LatencySample {
  #ring = new Float64Array(RING);
  #n = 0;

  record(ms: number): void {
    this.#ring[this.#n++ % RING] = ms;
  }

  /** The 99th percentile of the recent samples, ms; undefined before the first. */
  p99(): number | undefined {
    const n = Math.min(this.#n, RING);
    if (n === 0) return undefined;
    const sorted = this.#ring.slice(0, n).sort();
    return sorted[Math.min(n - 1, Math.floor(n * 0.99))];
  }
}
