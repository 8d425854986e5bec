/**
 * When the intrinsics guard runs, and whom a pollution is counted against. Checking after every message would cost
 * the message path (a check reads every own property descriptor of ~30 built-ins: 0.47 ms measured here), so the
 * guard runs at the points where a pollution does its damage, plus a slow sweep:
 * - when a swap starts building, and before a new version's module is evaluated (a pollution by the running version
 *   breaks esbuild, which parses JSON, and the load: `__export` iterates the polluted key);
 * - right after it is evaluated (a version whose module body pollutes is refused: HOTLINE_E_PLUGIN_POLLUTED);
 * - when a version is retired;
 * - every SWEEP_INTERVAL_MS while any version is live, so `Object.prototype.then` from a handler hangs the host's own
 *   promises for at most that long.
 * A pollution found outside a version's own load is counted against every live version: plugin code is the only
 * code that runs there which the host does not own, and which version did it cannot be told apart.
 */
import { HotlineError } from '../errors.js';
import { describePollution, intrinsics, type Pollution } from './intrinsics.js';
import { liveVersions, type LiveModule } from './live-versions.js';

/** How often the slow sweep runs while a version is live. */
export const SWEEP_INTERVAL_MS = 1000;

let sweeper: NodeJS.Timeout | undefined;

liveVersions.watch((anyLive) => {
  clearInterval(sweeper);
  sweeper = undefined;
  if (!anyLive) return;
  sweeper = setInterval(sweepLiveVersions, SWEEP_INTERVAL_MS);
  // The sweep protects a running host; it must never keep an idle one alive.
  sweeper.unref();
});

/** Repair any pollution and count it against every live version. */
export function sweepLiveVersions(): Pollution[] {
  return sweepIntrinsics(liveVersions.all());
}

/** Repair any pollution and count it against `blame`. Returns what was found. Never throws. */
export function sweepIntrinsics(blame: LiveModule[], when = 'while it was running'): Pollution[] {
  if (!intrinsics.armed) return [];
  const found = intrinsics.repair();
  if (found.length === 0) return found;
  for (const m of blame) {
    try {
      m.report(pollutionError(found, when));
    } catch {
      // Counting is best effort; the repair already happened.
    }
  }
  return found;
}

export function pollutionError(found: Pollution[], when: string): HotlineError {
  return new HotlineError('HOTLINE_E_PLUGIN_POLLUTED', `built-ins changed ${when}, repaired: ${describePollution(found)}`);
}
