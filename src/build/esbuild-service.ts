/**
 * esbuild's service process: every esbuild context of this process talks to one `esbuild --service` child. That
 * child sits in the host's process group, so a SIGHUP to the whole group (`systemctl reload` of a unit, a terminal
 * closing) kills it. esbuild then fails every call, of every context, with "The service is no longer running" and
 * never starts another by itself.
 *
 * Several bundlers may meet the dead service (one per host). Generations make sure it is replaced once: a bundler
 * that saw generation g fail stops the service only while g is still the current one. Stopping a newer, live one
 * would kill the contexts the first bundler to notice had just recreated.
 */
import * as esbuild from 'esbuild';

/** esbuild's words for a service process that is gone (main.js `afterClose` and `sendRequest`). */
const SERVICE_GONE = /^The service (was stopped|is no longer running)/;

let generation = 0;

/** True when `err` says the esbuild service process is gone, not that the build failed. */
export function isServiceGone(err: unknown): boolean {
  return err instanceof Error && SERVICE_GONE.test(err.message) && !('errors' in err && Array.isArray(err.errors) && err.errors.length > 0);
}

/** The service generation contexts made now belong to. */
export function serviceGeneration(): number {
  return generation;
}

/**
 * The service of generation `seen` is gone: forget it, so that the next esbuild call spawns a new one. Does nothing
 * when another bundler has already replaced it.
 */
export async function replaceService(seen: number): Promise<void> {
  if (seen !== generation) return;
  generation++;
  await esbuild.stop();
}
