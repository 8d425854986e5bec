/**
 * A metric family as prom-client's registry reads it (`get()`), and how to register one whose values are read at
 * scrape time instead of kept by prom-client: counters the host already keeps (messages in and out), gauges of live
 * state (connections, queued bytes), the handler histogram of handler-histogram.ts, and in a supervisor the worker's
 * families merged with the totals of the workers before it (metric-totals.ts).
 */
import type { Registry } from 'prom-client';

export type FamilyType = 'counter' | 'gauge' | 'histogram';

/** One sample. `metricName` names a histogram's `_bucket`, `_sum` and `_count` lines. */
export interface Sample {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

/** What `registry.getMetricsAsJSON()` yields per metric, and what crosses the worker's IPC channel. */
export interface MetricFamily {
  name: string;
  help: string;
  type: FamilyType;
  values: Sample[];
}

/** Register a family whose samples `read()` returns at each scrape. */
export function registerFamily(registry: Registry, name: string, help: string, type: FamilyType, read: () => Sample[]): void {
  const metric = {
    name,
    help,
    type,
    get: () => Promise.resolve({ name, help, type, aggregator: 'sum', values: read() }),
    // registry.resetMetrics() calls it: these values belong to their owner, not to the registry.
    reset: () => undefined,
  };
  registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
}

/** Read the families of a registry, as plain data (IPC, JSON). */
export async function familiesOf(registry: Registry): Promise<MetricFamily[]> {
  const json = await registry.getMetricsAsJSON();
  return json.map((m) => ({
    name: m.name,
    help: m.help,
    type: m.type as unknown as FamilyType,
    values: m.values.map((v) => {
      const s = v as Sample;
      return s.metricName === undefined ? { value: s.value, labels: { ...s.labels } } : { value: s.value, labels: { ...s.labels }, metricName: s.metricName };
    }),
  }));
}
