/**
 * Environment for a hotline worker process so that memory freed after a burst goes back to the system. glibc serves
 * allocations under its mmap threshold (128 KiB, raised dynamically up to 32 MiB) from heap arenas that it returns
 * only from the top: after 400 sockets × 256 KiB of partial frames were closed and every Buffer collected, RSS stayed
 * 44 MiB over the start; with a 64 KiB threshold, the socket read chunks (64 KiB) and frame parts are mmap'd, and
 * RSS came back to +6 MiB (issue 9, item 5; test/hostile/truncated-tcp-frames.test.ts). A value the user set wins.
 */
export const MALLOC_ENV: Readonly<Record<string, string>> = { MALLOC_MMAP_THRESHOLD_: '65536' };

/** `env` with MALLOC_ENV's entries added where `env` has none. */
export function withMallocEnv(env: Record<string, string | undefined>): Record<string, string | undefined> {
  for (const [k, v] of Object.entries(MALLOC_ENV)) env[k] ??= v;
  return env;
}
