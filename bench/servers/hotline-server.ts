/**
 * A hotline host in its own process, driven over IPC by a bench: it reports its url once listening, forwards swap
 * phases and records with timestamps comparable across processes, and swaps on `{ type: 'reload' }`.
 *
 * Started with one JSON argument: { plugin, watch?, maxConnections?, limits?, tcpLength?, sessions? }.
 */
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { createHost } from '../../src/index.js';
import type { ClusterOptions, HostLimits, ReloadPolicy, WatchOptions } from '../../src/index.js';

export interface HotlineServerConfig {
  plugin: string;
  watch?: WatchOptions | false;
  maxConnections?: number;
  /** Further limits (R2 sets the partial-frame ones). */
  limits?: HostLimits;
  /** Also listen on TCP with length framing; its url is in the ready message's `urls`. */
  tcpLength?: boolean;
  /** Serve `hotline.v1` session clients too. */
  sessions?: boolean;
  /** issue 11: P2w and H1 run versions in worker threads. */
  isolation?: 'inline' | 'worker';
  hangTimeout?: number;
  /** issue 14 (M1): keep Prometheus metrics, and render them every `scrapeEvery` ms as a scraper would. */
  metrics?: boolean;
  scrapeEvery?: number;
  /** issue 13 (C2): a node of a cluster on NATS. */
  cluster?: ClusterOptions;
}

/** Wall-clock milliseconds with sub-millisecond precision, comparable between processes of one machine. */
export function wallNow(): number {
  return performance.timeOrigin + performance.now();
}

const config = JSON.parse(process.argv[2] ?? '{}') as HotlineServerConfig;
const host = await createHost({
  plugin: config.plugin,
  listen: [{ transport: 'ws', host: '127.0.0.1', port: 0 }, ...(config.tcpLength ? [{ transport: 'tcp' as const, host: '127.0.0.1', port: 0, framing: 'length' as const }] : [])],
  sessions: config.sessions === true,
  watch: config.watch ?? false,
  // The benches measure swaps, not probation; a bench plugin never throws.
  probation: false,
  limits: { maxConnections: config.maxConnections ?? 20_000, ...config.limits },
  logger: pino({ level: 'error' }, pino.destination(2)),
  ...(config.isolation && { isolation: config.isolation }),
  ...(config.hangTimeout && { hangTimeout: config.hangTimeout }),
  metrics: config.metrics === true,
  ...(config.cluster && { cluster: config.cluster }),
});
if (config.metrics && config.scrapeEvery) setInterval(() => void host.metrics(), config.scrapeEvery).unref();
host.on('phase', (phase, trigger) => process.send?.({ type: 'phase', phase, trigger, at: wallNow() }));
host.on('swap', (record) => process.send?.({ type: 'swap', record, at: wallNow() }));
host.on('swap-error', (err) => process.send?.({ type: 'swap-error', code: err.code, message: err.message }));

process.on('message', (m: { type: string; policy?: ReloadPolicy; gc?: boolean }) => {
  if (m.type === 'reload') {
    // issue 12: V1 reloads with { policy: 'pin' } to keep two versions live.
    host.reload('reload', m.policy !== undefined ? { policy: m.policy } : {}).then(
      (record) => process.send?.({ type: 'reloaded', record }),
      (err: Error & { code?: string }) => process.send?.({ type: 'reloaded', error: `${err.code ?? ''} ${err.message}` }),
    );
  } else if (m.type === 'status') {
    const s = host.status();
    const cpu = process.cpuUsage();
    // V1 asks for a collection before a memory reading (the server runs with --expose-gc then).
    if (m.gc === true) (globalThis as { gc?: () => void }).gc?.();
    process.send?.({ type: 'status', live: s.live.length, connections: s.connections, messages: s.messages, heapUsed: process.memoryUsage().heapUsed, rss: process.memoryUsage().rss, cpuMs: (cpu.user + cpu.system) / 1000, swaps: s.swaps });
  }
});

let closing = false;
const shutdown = () => {
  if (closing) return;
  closing = true;
  void host.close().then(() => process.exit(0));
};
process.on('SIGTERM', shutdown);
process.on('disconnect', shutdown);
process.send?.({ type: 'ready', url: host.addresses()[0]!.url, urls: host.addresses().map((a) => a.url), pid: process.pid });
