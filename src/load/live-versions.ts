/**
 * The registry of loaded plugin modules that have not been released, and the attribution of an escaped error to one
 * of them. Plugin bundles are compiled with the filename `hotline-plugin:<label>/<entry>.bundle.js` (loader.ts), so a
 * stack frame with that prefix names the module whose code threw, even when nothing of hotline is on the stack (an
 * unhandled rejection in an async function the plugin fired and forgot, a throw in a `net` server callback).
 *
 * The process-wide last-resort handler (`uncaughtException` / `unhandledRejection`) calls `reportEscape(err)`:
 * - a result with `live: true`: the error was counted against that version (HOTLINE_E_PLUGIN_ESCAPED, seen by
 *   probation); the host carries on;
 * - a result with `live: false`: plugin code of a version already released threw; nothing is left to count it
 *   against, and the host carries on;
 * - `undefined`: no plugin frame on the stack, so the error is the host's own (or of an npm package called from a
 *   plugin deeper than `Error.stackTraceLimit` frames); the last-resort policy applies.
 */
import { HotlineError, messageOf } from '../errors.js';

/** The prefix of every plugin bundle's filename in stack traces. */
export const PLUGIN_FILENAME_PREFIX = 'hotline-plugin:';

/** What a loaded module offers the registry. */
export interface LiveModule {
  /** The label in the bundle's filename, e.g. `v3`. */
  readonly label: string;
  /** The version's sequence number (as in `status().versions[].seq`). */
  readonly seq: number;
  /** Count `err` against the version: its code is kept, probation sees it. */
  report(err: HotlineError): void;
}

/** Which version an error belongs to. */
export interface Attribution {
  label: string;
  /** The version's seq; -1 when the version was released and its label does not carry it. */
  seq: number;
  /** False when the version was already released: nothing is left to count against. */
  live: boolean;
}

const live = new Map<string, LiveModule>();
/** Watchers run when the set of live modules goes from empty to not empty, and back (the intrinsics check). */
const watchers: Array<(anyLive: boolean) => void> = [];

// The label cannot contain `/`, whitespace or `)`: the loader builds it, and the filename ends at the first `/`.
const FRAME = /hotline-plugin:([^/\s()]+)\//;

/** The filename a bundle is compiled with. */
export function pluginFilename(label: string, base: string): string {
  return `${PLUGIN_FILENAME_PREFIX}${label}/${base}.bundle.js`;
}

export const liveVersions = {
  /** Register a loaded module. A second module with the same label replaces the first. */
  register(m: LiveModule): void {
    const wasEmpty = live.size === 0;
    live.set(m.label, m);
    if (wasEmpty) for (const w of watchers) w(true);
  },
  /** Forget a module: at release, so the registry never keeps an old version alive. Idempotent. */
  unregister(m: LiveModule): void {
    if (live.get(m.label) !== m) return;
    live.delete(m.label);
    if (live.size === 0) for (const w of watchers) w(false);
  },
  get(label: string): LiveModule | undefined {
    return live.get(label);
  },
  /** Every live module, oldest first. */
  all(): LiveModule[] {
    return [...live.values()];
  },
  get size(): number {
    return live.size;
  },
  /** Be told when the first module registers and when the last one leaves. */
  watch(w: (anyLive: boolean) => void): void {
    watchers.push(w);
  },
};

/**
 * The frames of `err`'s stack (its `    at …` lines, innermost first); none when it has no readable stack. Never
 * throws. The one stack reader of hotline: attribution here and the last resort's judge (host/last-resort.ts) must
 * agree on what is a frame, or an error would be blamed on a plugin by one and on hotline by the other.
 */
export function stackFrames(err: unknown): string[] {
  let stack: unknown;
  try {
    if (typeof err !== 'object' || err === null) return [];
    stack = (err as { stack?: unknown }).stack;
  } catch {
    return []; // a hostile getter on `stack`
  }
  if (typeof stack !== 'string') return [];
  return stack.split('\n').filter((l) => /^\s+at /.test(l));
}

/** The label of the plugin bundle a stack frame is in (`v3`), or undefined for any other frame. */
export function pluginFrameLabel(frame: string): string | undefined {
  return FRAME.exec(frame)?.[1];
}

/** The version whose code is the innermost plugin frame of `err`'s stack, if any. Never throws. */
export function attributeError(err: unknown): Attribution | undefined {
  let label: string | undefined;
  for (const f of stackFrames(err)) if ((label = pluginFrameLabel(f)) !== undefined) break;
  if (label === undefined) return undefined;
  const mod = live.get(label);
  if (mod) return { label, seq: mod.seq, live: true };
  const seq = /^v(\d+)$/.exec(label);
  return { label, seq: seq ? Number(seq[1]) : -1, live: false };
}

/**
 * Attribute an escaped error and count it against its live version (HOTLINE_E_PLUGIN_ESCAPED). Returns the
 * attribution, or `undefined` when the error is not plugin code's. Never throws: it runs inside the last-resort
 * handler.
 */
export function reportEscape(err: unknown, kind = 'uncaught error'): Attribution | undefined {
  const who = attributeError(err);
  if (!who?.live) return who;
  try {
    const coded = new HotlineError('HOTLINE_E_PLUGIN_ESCAPED', `${kind}: ${messageOf(err)}`, { cause: err });
    live.get(who.label)?.report(coded);
  } catch {
    // Counting is best effort here: the caller is the process's last line of defence.
  }
  return who;
}
