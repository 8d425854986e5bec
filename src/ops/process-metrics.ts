/**
 * Process metrics under the names prom-client's default collector uses (so stock Node.js Grafana dashboards read
 * them), kept here instead of `collectDefaultMetrics()` because that one starts an event-loop monitor per registry
 * that nothing ever stops; this one is stopped with its host.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import v8 from 'node:v8';
import type { Registry } from 'prom-client';
import { registerFamily } from './metric-family.js';

/** The event-loop sampling step, in ms: fine enough to see a 50 ms stall, cheap (one native timer). */
const LOOP_RESOLUTION_MS = 20;

export class ProcessMetrics {
  #loop: IntervalHistogram;

  constructor(registry: Registry) {
    const loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
    loop.enable();
    this.#loop = loop;
    // The delay percentiles since the previous scrape: reset after each read, so a stall shows once, when it happened.
    const lag = (read: () => number) => () => [{ labels: {}, value: Number.isFinite(read()) ? read() / 1e9 : 0 }];
    registerFamily(registry, 'nodejs_eventloop_lag_p50_seconds', 'Event-loop delay, median since the previous scrape.', 'gauge', lag(() => loop.percentile(50)));
    registerFamily(registry, 'nodejs_eventloop_lag_p99_seconds', 'Event-loop delay, 99th percentile since the previous scrape.', 'gauge', lag(() => loop.percentile(99)));
    registerFamily(registry, 'nodejs_eventloop_lag_max_seconds', 'Event-loop delay, maximum since the previous scrape.', 'gauge', () => {
      const max = loop.max;
      loop.reset();
      return [{ labels: {}, value: Number.isFinite(max) ? max / 1e9 : 0 }];
    });
    registerFamily(registry, 'nodejs_heap_size_used_bytes', 'V8 heap in use.', 'gauge', () => [{ labels: {}, value: v8.getHeapStatistics().used_heap_size }]);
    registerFamily(registry, 'nodejs_heap_size_total_bytes', 'V8 heap reserved.', 'gauge', () => [{ labels: {}, value: v8.getHeapStatistics().total_heap_size }]);
    registerFamily(registry, 'process_resident_memory_bytes', 'Resident set size.', 'gauge', () => [{ labels: {}, value: process.memoryUsage.rss() }]);
    registerFamily(registry, 'process_cpu_seconds_total', 'User and system CPU time of this process.', 'counter', () => {
      const cpu = process.cpuUsage();
      return [{ labels: {}, value: (cpu.user + cpu.system) / 1e6 }];
    });
  }

  close(): void {
    this.#loop.disable();
  }
}
