/**
 * The handler duration histogram, kept on the message path without prom-client: prom-client's `observe()` builds a
 * label object and hashes it at every call, a cost paid per message. Here a message costs a WeakMap read (target to
 * its cells) and a scan of 14 bucket bounds; the cumulative buckets Prometheus wants are summed only at a scrape
 * (bench/m1-metrics.bench.ts measures the whole path, metrics on against off).
 *
 * Bounded: at most MAX_VERSION_LABELS version labels. A new label past that drops the oldest one from the export (a
 * long-running host that swapped through hundreds of versions keeps the recent ones).
 */
import type { DispatchTarget, HandlerObserver } from '../connection/dispatcher.js';
import type { Sample } from './metric-family.js';

/** Upper bounds in seconds, from 100 µs (an echo) to 10 s (a handler near hangTimeout). */
export const HANDLER_BUCKETS: readonly number[] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 10];

/** Distinct `version` label values kept at most. */
export const MAX_VERSION_LABELS = 16;

const BOUNDS_MS = HANDLER_BUCKETS.map((s) => s * 1000);

class Cells {
  /** Non-cumulative: counts[i] for bound i, counts[length - 1] for +Inf. */
  readonly counts = new Float64Array(BOUNDS_MS.length + 1);
  sumMs = 0;
  count = 0;
}

export class HandlerHistogram implements HandlerObserver {
  #labelOf: (target: DispatchTarget) => string;
  #byTarget = new WeakMap<DispatchTarget, Cells>();
  /** By label, oldest first (a Map keeps insertion order). */
  #byLabel = new Map<string, Cells>();

  /** `labelOf`: the version label of a target (called once per target). */
  constructor(labelOf: (target: DispatchTarget) => string) {
    this.#labelOf = labelOf;
  }

  handled(target: DispatchTarget, ms: number): void {
    const cells = this.#byTarget.get(target) ?? this.#cellsFor(target);
    let i = 0;
    while (i < BOUNDS_MS.length && ms > BOUNDS_MS[i]!) i++;
    cells.counts[i]!++;
    cells.sumMs += ms;
    cells.count++;
  }

  #cellsFor(target: DispatchTarget): Cells {
    const label = this.#labelOf(target);
    let cells = this.#byLabel.get(label);
    if (!cells) {
      cells = new Cells();
      this.#byLabel.set(label, cells);
      if (this.#byLabel.size > MAX_VERSION_LABELS) this.#byLabel.delete(this.#byLabel.keys().next().value!);
    }
    this.#byTarget.set(target, cells);
    return cells;
  }

  /** Prometheus samples for `name` (`_bucket` with `le`, `_sum` in seconds, `_count`). */
  samples(name: string): Sample[] {
    const out: Sample[] = [];
    for (const [version, cells] of this.#byLabel) {
      let cumulative = 0;
      for (let i = 0; i <= BOUNDS_MS.length; i++) {
        cumulative += cells.counts[i]!;
        out.push({ metricName: `${name}_bucket`, labels: { version, le: i < BOUNDS_MS.length ? HANDLER_BUCKETS[i]! : '+Inf' }, value: cumulative });
      }
      out.push({ metricName: `${name}_sum`, labels: { version }, value: cells.sumMs / 1000 });
      out.push({ metricName: `${name}_count`, labels: { version }, value: cells.count });
    }
    return out;
  }
}
