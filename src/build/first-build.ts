/**
 * A bundler whose first build is one given in advance (issue 11, last known good): a worker the supervisor restarts
 * after a new build crashed it serves the previous build, not whatever is on disk now, which is that crashing build.
 * Every later build reads the disk as usual, so a `hotline reload` (or a save under --watch) still deploys a fix.
 */
import type { Bundle, Bundler } from './bundler.js';

export function withFirstBuild(bundler: Bundler, first: Bundle | undefined): Bundler {
  if (!first) return bundler;
  let pending: Bundle | undefined = first;
  return {
    build() {
      const b = pending;
      pending = undefined;
      return b ? Promise.resolve(b) : bundler.build();
    },
    dispose: () => bundler.dispose(),
  };
}
