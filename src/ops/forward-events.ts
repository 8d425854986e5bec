/**
 * A worker's half of the supervisor's event stream: the host's swap events, as OpsEvents, handed to `send` (the IPC
 * channel). Structural, so this folder needs nothing of host/: any emitter of these events will do.
 */
import type { OpsEvent } from './event-stream.js';
import type { Coded, HostEventSource } from './host-wiring.js';

export function forwardOpsEvents(host: HostEventSource, send: (event: OpsEvent) => void): void {
  const at = () => Date.now();
  host.on('phase', (phase: string, trigger: string) => send({ type: 'phase', at: at(), data: { phase, trigger } }));
  host.on('swap', (record: unknown, version: unknown) => send({ type: 'swap', at: at(), data: { record, version } }));
  host.on('swap-unchanged', (record: unknown) => send({ type: 'swap', at: at(), data: { record } }));
  host.on('swap-error', (err: Coded, record: unknown) => send({ type: 'swap-error', at: at(), data: { record, error: err.toJSON() } }));
  host.on('probation-failed', (err: Coded, version: unknown) => send({ type: 'probation-failed', at: at(), data: { version, error: err.toJSON() } }));
}
