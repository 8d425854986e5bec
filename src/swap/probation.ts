/**
 * Probation: for a window after a switch, a new version whose handler error rate crosses a threshold is rolled back
 * automatically. A version that misbehaves only under real traffic never outstays its window.
 */

/** Probation settings. `false` in host options turns probation off. */
export interface ProbationOptions {
  /** How long after the switch a version is on probation, in ms. Default 30 000. */
  window: number;
  /** Errors before the rate is judged at all, so one early error in light traffic is not a rollback. Default 5. */
  minErrors: number;
  /** Handler errors per handled message above which the version is rolled back. Default 0.5. */
  maxErrorRate: number;
}

export const DEFAULT_PROBATION: ProbationOptions = { window: 30_000, minErrors: 5, maxErrorRate: 0.5 };

/** Watches one version at a time. */
export class Probation {
  #options: ProbationOptions;
  #timer: NodeJS.Timeout | undefined;
  #watched: { seq: number; onFail: () => void } | undefined;

  constructor(options: ProbationOptions) {
    this.#options = options;
  }

  /** Put version `seq` on probation; `onFail` runs at most once if it fails. Replaces any earlier watch. */
  start(seq: number, onFail: () => void): void {
    this.stop();
    this.#watched = { seq, onFail };
    this.#timer = setTimeout(() => this.stop(), this.#options.window);
    this.#timer.unref();
  }

  /** True while version `seq` is on probation. */
  watching(seq: number): boolean {
    return this.#watched?.seq === seq;
  }

  /** Judge version `seq` after an error, given its counters. */
  report(seq: number, errors: number, messages: number): void {
    const w = this.#watched;
    if (!w || w.seq !== seq) return;
    const { minErrors, maxErrorRate } = this.#options;
    if (errors >= minErrors && errors / Math.max(messages, 1) > maxErrorRate) {
      this.stop();
      w.onFail();
    }
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#watched = undefined;
  }
}
