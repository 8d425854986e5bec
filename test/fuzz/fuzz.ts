/**
 * Shared settings of the property-based fuzz tests (issue 9): at least 10,000 cases per parser, a fixed seed in CI
 * (`process.env.CI` set) so a red build reproduces, a fresh one locally so each run explores new inputs. The seed
 * is printed before each property runs and again, with the shrunk counterexample and its path, in the failure.
 */
import fc from 'fast-check';
import { HotlineError, type ErrorCode } from '../../src/errors.js';

export const FUZZ_RUNS = 10_000;
const CI_SEED = 20_260_409;

/** Parameters for fc.assert: the seed is logged first, so it is in the output even if a case never returns. */
export function fuzzParams(name: string, numRuns = FUZZ_RUNS): fc.Parameters<unknown> {
  const seed = process.env.CI ? CI_SEED : (Date.now() ^ (Math.random() * 0x7fffffff)) | 0;
  process.stdout.write(`# fuzz ${name}: ${numRuns} runs, seed ${seed}${process.env.CI ? ' (CI)' : ''}\n`);
  return { numRuns, seed };
}

/** Run `fn`; a throw is only allowed as a HotlineError with `code`. Returns what fn returned, or the error. */
export function totalOrCoded<T>(code: ErrorCode, fn: () => T): T | HotlineError {
  try {
    return fn();
  } catch (err) {
    if (err instanceof HotlineError && err.code === code) return err;
    throw new Error(`threw something other than a ${code}: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`, { cause: err });
  }
}

/** Cut `bytes` at the given points (any numbers: they are reduced modulo the length, sorted and deduplicated). */
export function splitAt(bytes: Buffer, cuts: number[]): Buffer[] {
  if (bytes.length === 0) return [bytes];
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    parts.push(bytes.subarray(prev, p));
    prev = p;
  }
  parts.push(bytes.subarray(prev));
  return parts;
}

/** Split points: none, a few, or one per byte (every chunk a single byte). */
export const cuts = fc.oneof(
  { arbitrary: fc.array(fc.nat(), { maxLength: 8 }), weight: 9 },
  { arbitrary: fc.constant(Array.from({ length: 4096 }, (_, i) => i)), weight: 1 },
);
