/**
 * Running totals across worker processes (`hotline start`): a worker's counters start at 0, but what the supervisor
 * reports must never go down at an upgrade or a restart, or every Prometheus `rate()` shows a spike and every
 * `increase()` a gap. So the supervisor keeps, per worker, the latest families it read from it; when another worker
 * takes over, the counters and histograms of the one before are added to a baseline, and every report is
 * baseline + the serving worker. Gauges (connections, heap) are the serving worker's own.
 *
 * Never lower than a report before: the baseline takes the last families read from a worker, and every report read
 * them first. A crashed worker's counts since the last read are lost (it cannot be asked); they never go back.
 *
 * Bounded: at most MAX_SAMPLES samples in the baseline (labels are bounded per family, so this is a backstop).
 */
import type { MetricFamily, Sample } from './metric-family.js';

export const MAX_SAMPLES = 20_000;

interface FamilyTotals {
  help: string;
  type: MetricFamily['type'];
  samples: Map<string, Sample>;
}

export class MetricTotals {
  #baseline = new Map<string, FamilyTotals>();
  #baselineSamples = 0;
  #worker: number | undefined;
  #latest: MetricFamily[] = [];

  /** The latest families read from worker `pid` (a worker other than the last one retires that one first). */
  update(pid: number, families: MetricFamily[]): void {
    if (this.#worker !== undefined && this.#worker !== pid) this.#retire();
    this.#worker = pid;
    this.#latest = families;
  }

  /**
   * The worker `pid` is gone or replaced: its latest families join the baseline (once), but for those in `carried`:
   * its successor already started from their value (a process upgrade carries them), so adding them would count twice.
   */
  retire(pid: number, carried: ReadonlySet<string> = new Set()): void {
    if (this.#worker === pid) this.#retire(carried);
  }

  /** Baseline + the serving worker, as families. */
  report(): MetricFamily[] {
    const out = new Map<string, { help: string; type: MetricFamily['type']; samples: Map<string, Sample> }>();
    for (const [name, f] of this.#baseline) out.set(name, { help: f.help, type: f.type, samples: new Map([...f.samples].map(([k, s]) => [k, { ...s }])) });
    for (const f of this.#latest) {
      let t = out.get(f.name);
      if (!t) out.set(f.name, (t = { help: f.help, type: f.type, samples: new Map() }));
      for (const s of f.values) {
        const key = keyOf(s);
        const prev = t.samples.get(key);
        if (prev && f.type !== 'gauge') prev.value += s.value;
        else t.samples.set(key, { ...s });
      }
    }
    return [...out].map(([name, t]) => ({ name, help: t.help, type: t.type, values: [...t.samples.values()] }));
  }

  #retire(carried: ReadonlySet<string> = new Set()): void {
    for (const f of this.#latest) {
      if (f.type === 'gauge' || carried.has(f.name)) continue;
      let t = this.#baseline.get(f.name);
      if (!t) this.#baseline.set(f.name, (t = { help: f.help, type: f.type, samples: new Map() }));
      for (const s of f.values) {
        const key = keyOf(s);
        const prev = t.samples.get(key);
        if (prev) prev.value += s.value;
        else if (this.#baselineSamples < MAX_SAMPLES) {
          t.samples.set(key, { ...s, labels: { ...s.labels } });
          this.#baselineSamples++;
        }
      }
    }
    this.#latest = [];
    this.#worker = undefined;
  }
}

function keyOf(s: Sample): string {
  const labels = Object.keys(s.labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(String(s.labels[k]))}`)
    .join(',');
  return `${s.metricName ?? ''}{${labels}}`;
}

/** Check families that came over IPC: the shape, finite values, string or number labels. Drops what does not fit. */
export function checkFamilies(v: unknown): MetricFamily[] {
  if (!Array.isArray(v)) return [];
  const out: MetricFamily[] = [];
  for (const f of v.slice(0, 500)) {
    if (f === null || typeof f !== 'object') continue;
    const { name, help, type, values } = f as Record<string, unknown>;
    if (typeof name !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]{0,200}$/.test(name) || typeof help !== 'string') continue;
    if (type !== 'counter' && type !== 'gauge' && type !== 'histogram') continue;
    if (!Array.isArray(values)) continue;
    const samples: Sample[] = [];
    for (const s of values.slice(0, 5_000)) {
      if (s === null || typeof s !== 'object') continue;
      const { value, labels, metricName } = s as Record<string, unknown>;
      if (typeof value !== 'number' || Number.isNaN(value) || labels === null || typeof labels !== 'object') continue;
      if (metricName !== undefined && (typeof metricName !== 'string' || !metricName.startsWith(name))) continue;
      const clean: Record<string, string | number> = {};
      let ok = true;
      for (const [k, lv] of Object.entries(labels)) {
        if (!/^[a-zA-Z_][a-zA-Z0-9_]{0,100}$/.test(k) || (typeof lv !== 'string' && typeof lv !== 'number')) ok = false;
        else clean[k] = typeof lv === 'string' ? lv.slice(0, 200) : lv;
      }
      if (ok) samples.push(metricName === undefined ? { value, labels: clean } : { value, labels: clean, metricName: metricName as string });
    }
    out.push({ name, help: help.slice(0, 500), type, values: samples });
  }
  return out;
}
