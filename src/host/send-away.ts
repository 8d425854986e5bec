/**
 * Graceful shutdown without a reconnect storm: close connections `batchSize` at a time, `interval` ms apart, as the
 * Phoenix "drainer" does. Each close is WS 1012 (service restart); session clients also get a reconnect hint first
 * (src/session/session.ts), and spread their return over it with jitter.
 */
import { CLOSE_SERVICE_RESTART } from '../connection/close-codes.js';
import type { Connection } from '../connection/connection.js';
import type { SendAwayOptions } from '../session/options.js';

/** One batch, reported as it is sent away. */
export interface SendAwayBatch {
  batch: number;
  closed: number;
  remaining: number;
}

/** @deprecated Since 0.2: the old name of SendAwayBatch. */
export type DrainBatch = SendAwayBatch;

/**
 * @internal Close every connection in `conns`, in batches. Resolves after the last batch was sent its close; it does not wait
 * for the clients to leave (the host does). `aborted()` stops it between batches.
 */
export async function sendAwayInBatches(
  conns: Iterable<Connection>,
  options: Required<SendAwayOptions>,
  onBatch: (b: SendAwayBatch) => void,
  aborted: () => boolean = () => false,
): Promise<void> {
  const all = [...conns];
  let batch = 0;
  for (let i = 0; i < all.length; i += options.batchSize) {
    if (aborted()) return;
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, options.interval));
    const slice = all.slice(i, i + options.batchSize);
    for (const conn of slice) conn.close(CLOSE_SERVICE_RESTART, 'service restart');
    onBatch({ batch: ++batch, closed: slice.length, remaining: all.length - i - slice.length });
  }
}
