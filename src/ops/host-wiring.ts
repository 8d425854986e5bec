/**
 * What feeds a host's metrics and its event stream: its own events, subscribed to here so the host only creates
 * the two. Structural, so this folder needs nothing of host/: any emitter of these events will do.
 */
import type { EventStream } from './event-stream.js';
import type { HostMetrics } from './host-metrics.js';
import type { SwapRecord } from '../swap/history.js';

/** A host, as far as its events go. */
export interface HostEventSource {
  on(event: string, listener: (...args: never[]) => void): unknown;
}

export interface Coded {
  code: string;
  toJSON(): { code: string; message: string };
}

interface Versioned {
  version: string;
}

/** Count the host's swaps, errors and sessions into `m`, and publish swaps, phases and probation to `events`. */
export function wireHostMetrics(host: HostEventSource, m: HostMetrics, events: EventStream | undefined): void {
  host.on('swap', (record: SwapRecord, version: unknown) => {
    m.swapEnded(record);
    events?.publish('swap', { record, version });
  });
  host.on('swap-unchanged', (record: SwapRecord) => {
    m.swapEnded(record);
    events?.publish('swap', { record });
  });
  host.on('swap-error', (err: Coded, record: SwapRecord) => {
    m.swapEnded(record);
    events?.publish('swap-error', { record, error: err.toJSON() });
  });
  host.on('phase', (phase: string, trigger: string) => events?.publish('phase', { phase, trigger }));
  host.on('handler-error', (err: Coded, v: Versioned) => m.handlerError(v.version, err.code));
  host.on('connection-error', (err: Coded) => m.connectionError(err.code));
  host.on('probation-failed', (err: Coded, v: Versioned) => {
    m.probationFailed(v.version);
    events?.publish('probation-failed', { version: v, error: err.toJSON() });
  });
  host.on('sendAway', (batch: { closed: number }) => m.sentAway(batch.closed));
  host.on('session-resumed', () => m.sessionResumed());
  host.on('session-lost', (code: string) => m.sessionLost(code));
}
