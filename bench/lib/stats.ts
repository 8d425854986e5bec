/**
 * Latency statistics that survive a process boundary: a log-bucketed histogram (1% resolution) that client
 * processes serialise and the orchestrator merges, plus exact percentiles for the small samples P1 collects.
 */

// 1% wide buckets from 1 µs to ~10 min: exact enough for percentiles, small enough (~2,000 counters) to send over IPC.
const GROWTH = Math.log(1.01);
const BUCKETS = 2100;

/** A mergeable latency histogram in microseconds. */
export class Histogram {
  readonly counts: number[];
  count = 0;
  maxUs = 0;
  sumUs = 0;

  constructor(counts?: number[]) {
    this.counts = counts ?? new Array<number>(BUCKETS).fill(0);
  }

  record(us: number): void {
    const v = us < 1 ? 1 : us;
    const i = Math.min(BUCKETS - 1, Math.floor(Math.log(v) / GROWTH));
    this.counts[i]!++;
    this.count++;
    this.sumUs += v;
    if (v > this.maxUs) this.maxUs = v;
  }

  merge(other: HistogramJson): void {
    for (let i = 0; i < BUCKETS; i++) this.counts[i]! += other.counts[i] ?? 0;
    this.count += other.count;
    this.sumUs += other.sumUs;
    if (other.maxUs > this.maxUs) this.maxUs = other.maxUs;
  }

  /** The value at quantile `q` (0..1) in microseconds: the upper edge of its bucket, capped by the exact max. */
  quantileUs(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.ceil(q * this.count);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(this.maxUs, Math.exp((i + 1) * GROWTH));
    }
    return this.maxUs;
  }

  toJSON(): HistogramJson {
    return { counts: this.counts, count: this.count, maxUs: this.maxUs, sumUs: this.sumUs };
  }

  static from(json: HistogramJson): Histogram {
    const h = new Histogram([...json.counts]);
    h.count = json.count;
    h.maxUs = json.maxUs;
    h.sumUs = json.sumUs;
    return h;
  }
}

export interface HistogramJson {
  counts: number[];
  count: number;
  maxUs: number;
  sumUs: number;
}

/** Exact quantile of a small sample (nearest rank). */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1]!;
}

export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/** Format milliseconds for a table: 3 significant figures, no exponent. */
export function ms(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  if (value >= 100) return `${Math.round(value)} ms`;
  if (value >= 10) return `${value.toFixed(1)} ms`;
  return `${value.toFixed(2)} ms`;
}

/** `a / b` as `12.3×`. */
export function ratio(a: number, b: number): string {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return 'n/a';
  const r = a / b;
  return r >= 10 ? `${r.toFixed(0)}×` : `${r.toFixed(2)}×`;
}
