/**
 * The supervisor's record of which plugin build is known good (issue 11, inline mode). Inline plugin code runs in the
 * worker's own thread, so a new build that crashes the worker, or blocks it until the watchdog kills it, takes the
 * whole worker down. If the restarted worker built the plugin from disk again, it would load that same build and die
 * again: a crash loop. So the supervisor keeps the builds itself (the worker reports each build it starts serving,
 * checked by build-report.ts) and starts a restarted worker on the last known good one.
 *
 *   a build reported ─► on probation ─(window passes, worker beating)─► known good
 *                            │
 *                            └─(the worker dies: crash or watchdog kill)─► rejected; restart on the known good one
 *
 * The rules (docs/reliability.md, "Last known good"):
 * - the first build the supervisor sees is known good at once: it is what the operator started, there is nothing
 *   older to go back to, and a second build that crashes must still have somewhere to fall back to;
 * - any other build is on probation for `windowMs` (the host's probation window; 0 with probation off) from the
 *   moment its worker reports it; it becomes known good at the end of the window if the worker is still alive and
 *   beating (a worker blocked near the end of its window is not promoted by the silence);
 * - a worker that dies while its build is on probation is restarted on the known good build
 *   (HOTLINE_E_WORKER_LKG); any other death restarts on the known good build too, which is then the build it served.
 *
 * All state, no side effect but the clock (a promotion timer), so the unit tests drive it with a fake clock.
 */
import type { Bundle } from '../build/bundler.js';
import type { ErrorCode } from '../errors.js';
import type { Clock } from './clock.js';

/** How many rejected builds (and fallbacks) status remembers. */
const KEPT = 10;

/** One restart onto the last known good build, as status and history show it. */
export interface LkgFallback {
  code: 'HOTLINE_E_WORKER_LKG';
  message: string;
  /** The build on probation when its worker died. */
  from: string;
  /** The known good build the next worker starts on. */
  to: string;
  /** Why the worker died: HOTLINE_E_WORKER_HUNG (watchdog) or HOTLINE_E_WORKER_EXIT. */
  cause: ErrorCode;
  pid: number;
  at: number;
}

/** What `hotline status` shows (supervisor.lastKnownGood). */
export interface LkgStatus {
  /** The build a restarted worker starts on. */
  good?: { hash: string; since: number; how: 'first' | 'probation' };
  /** The build serving now, if it is not known good yet. */
  probation?: { hash: string; since: number; windowMs: number };
  /** Builds whose worker died during their probation, oldest first. */
  rejected: string[];
  /** Restarts onto the known good build after a death during probation, oldest first. */
  fallbacks: LkgFallback[];
}

export class LastKnownGood {
  #clock: Clock;
  #windowMs: number;
  /** True while the serving worker beats (its watchdog): silence at the end of a window delays the promotion. */
  #beating: () => boolean;
  #retryMs: number;
  #good: { build: Bundle; since: number; how: 'first' | 'probation' } | undefined;
  #probation: { build: Bundle; since: number } | undefined;
  #timer: unknown;
  #rejected: string[] = [];
  #fallbacks: LkgFallback[] = [];

  /** `retryMs`: how soon a promotion refused for silence is tried again (a heartbeat interval). */
  constructor(clock: Clock, windowMs: number, beating: () => boolean, retryMs: number) {
    this.#clock = clock;
    this.#windowMs = windowMs;
    this.#beating = beating;
    this.#retryMs = retryMs;
  }

  /** The build a worker started now should load: the known good one, or undefined to build from disk. */
  get build(): Bundle | undefined {
    return this.#good?.build;
  }

  /** The serving worker reported the build it serves now (already checked: build-report.ts). */
  serving(build: Bundle): void {
    this.#clock.clearTimeout(this.#timer);
    this.#probation = undefined;
    const now = this.#clock.now();
    if (!this.#good) {
      this.#good = { build, since: now, how: 'first' };
      return;
    }
    if (build.hash === this.#good.build.hash) return;
    this.#probation = { build, since: now };
    if (this.#windowMs > 0) this.#timer = this.#clock.setTimeout(() => this.#promote(), this.#windowMs);
    else this.#promote();
  }

  /**
   * The serving worker died (`cause`: its code). Returns the fallback when its build was on probation (the caller
   * logs it, and restarts on `build`), undefined otherwise.
   */
  died(cause: ErrorCode, pid: number): LkgFallback | undefined {
    this.#clock.clearTimeout(this.#timer);
    const p = this.#probation;
    this.#probation = undefined;
    if (!p || !this.#good) return undefined;
    const to = this.#good.build.hash;
    const f: LkgFallback = {
      code: 'HOTLINE_E_WORKER_LKG',
      message: `worker ${pid} died (${cause}) while build ${p.build.hash} was on probation; restarting on the last known good build ${to}`,
      from: p.build.hash,
      to,
      cause,
      pid,
      at: this.#clock.now(),
    };
    push(this.#rejected, p.build.hash);
    push(this.#fallbacks, f);
    return f;
  }

  /** No more promotions (the supervisor stops). Idempotent. */
  stop(): void {
    this.#clock.clearTimeout(this.#timer);
  }

  status(): LkgStatus {
    const g = this.#good;
    const p = this.#probation;
    return {
      ...(g && { good: { hash: g.build.hash, since: g.since, how: g.how } }),
      ...(p && { probation: { hash: p.build.hash, since: p.since, windowMs: this.#windowMs } }),
      rejected: [...this.#rejected],
      fallbacks: this.#fallbacks.map((f) => ({ ...f })),
    };
  }

  #promote(): void {
    const p = this.#probation;
    if (!p) return;
    if (!this.#beating()) {
      this.#timer = this.#clock.setTimeout(() => this.#promote(), this.#retryMs);
      return;
    }
    this.#probation = undefined;
    this.#good = { build: p.build, since: this.#clock.now(), how: 'probation' };
  }
}

function push<T>(list: T[], item: T): void {
  list.push(item);
  if (list.length > KEPT) list.shift();
}
