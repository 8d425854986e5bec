/**
 * Forced garbage collection for the memory tests, which run with --expose-gc.
 */
import assert from 'node:assert/strict';

export function gc(): () => void {
  const fn = (globalThis as { gc?: () => void }).gc;
  assert.ok(fn, 'run the tests with node --expose-gc');
  return fn;
}

/** Collect until `cond` holds, yielding between rounds: a WeakRef target lives until the current job ends. */
export async function collectUntil(cond: () => boolean, rounds = 20): Promise<boolean> {
  const collect = gc();
  for (let i = 0; i < rounds; i++) {
    collect();
    await new Promise((r) => setImmediate(r));
    if (cond()) return true;
  }
  return false;
}

/** `heapUsed` after a few rounds of collection. */
export async function settledHeap(): Promise<number> {
  const collect = gc();
  for (let i = 0; i < 4; i++) {
    collect();
    await new Promise((r) => setImmediate(r));
  }
  return process.memoryUsage().heapUsed;
}

/** Bytes as MB with one decimal, for test diagnostics. */
export function mb(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}

/**
 * Run `swap(i)` for i = 1..count and return the settled heap after the 10th and after the last: the memory tests
 * bound the second by the first.
 */
export async function heapOverSwaps(count: number, swap: (i: number) => Promise<void>): Promise<{ heap10: number; heapLast: number }> {
  let heap10 = 0;
  for (let i = 1; i <= count; i++) {
    await swap(i);
    if (i === 10) heap10 = await settledHeap();
  }
  return { heap10, heapLast: await settledHeap() };
}
