/**
 * Awaiting a host's typed events in tests.
 */
import type { Host } from '../../src/index.js';
import type { SwapRecord } from '../../src/swap/history.js';

/** Resolve with the next switched swap to `label` (`name@version`); reject after `timeoutMs`. */
export function switchedTo(host: Host, label: string, timeoutMs = 15_000): Promise<SwapRecord> {
  return new Promise((resolve, reject) => {
    const onSwap = (record: SwapRecord) => {
      if (record.to !== label) return;
      clearTimeout(timer);
      host.off('swap', onSwap);
      resolve(record);
    };
    const timer = setTimeout(() => {
      host.off('swap', onSwap);
      reject(new Error(`no swap to ${label} within ${timeoutMs} ms`));
    }, timeoutMs);
    host.on('swap', onSwap);
  });
}
