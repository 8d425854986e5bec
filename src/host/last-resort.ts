/**
 * The last resort: what a hotline process does with an exception or a rejection that nothing caught (issue 9, item 3).
 * Node's default is to print it and exit 1, with nothing to tell a crash from a clean exit, and every client of the
 * process gone. Installed once per process: in the worker (worker-main.ts), in the supervisor (cli/supervise.ts) and
 * in an in-process `hotline dev` / `hotline start` (cli/start.ts).
 *
 * The rule, from what the escaped error can have left behind:
 * - **A rejection** (`unhandledRejection`) unwound nothing: the code that made the promise ran to its end, and only
 *   its error went unread. State is as intact as that code's own error path leaves it. Logged, counted, served on.
 * - **An exception** (`uncaughtException`) unwound a synchronous call stack at an arbitrary point. If a frame of
 *   hotline's own code (src/ or dist/) was on it, a structure may be half-updated: the process logs it at fatal
 *   level and exits with EXIT_INTERNAL (70, EX_SOFTWARE), a code of its own so that the supervisor (for a worker)
 *   or a process manager (for the supervisor or an in-process host) restarts it, and an operator can tell it from a
 *   clean stop (0) or a second signal (1). Two kinds are known to be safe and are served on, logged and counted:
 *   - a socket-level error (`EPIPE`, `ECONNRESET`, ...) emitted on a stream with no `'error'` listener: it comes from
 *     one peer, out of the event loop, not from the middle of our code;
 *   - an exception blamed on a plugin whose whole stack (not cut off by `Error.stackTraceLimit`) has no hotline frame,
 *     or whose only hotline frames threw a HotlineError (a guard clause refusing the plugin's call by name, before any
 *     change): hotline's state is as it was between two events.
 * - Anything that cannot be read (a thrown non-Error, a stack without frames) counts as hotline's own: exit.
 *
 * Attribution (judge below): an error whose innermost owned frame is in a plugin bundle (`hotline-plugin:` file names,
 * load/loader.ts) is reported as HOTLINE_E_PLUGIN_ESCAPED, everything else as HOTLINE_E_INTERNAL. Plugin handler errors
 * never get here: the dispatcher and the tracked timers catch them (HOTLINE_E_HANDLER). What gets here from a plugin
 * is code that runs outside anything hotline calls: an unawaited promise that rejects, a `process.nextTick` or
 * `queueMicrotask` callback, a listener on an emitter the plugin made. Those are logged, counted here, and handed to
 * `deps.blame` (load/live-versions.ts `reportEscape`), which counts them against the version whose bundle threw when
 * it is still live, so probation sees them.
 */
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import type { ErrorCode } from '../errors.js';
import { HotlineError, messageOf } from '../errors.js';
import { pluginFrameLabel, reportEscape, stackFrames } from '../load/live-versions.js';

/** The exit code of a process that stopped because an exception escaped hotline's own code (sysexits EX_SOFTWARE). */
export const EXIT_INTERNAL = 70;

/** Socket-level error codes: one peer's doing, reported out of the event loop, never from the middle of our code. */
const SOCKET_CODES: ReadonlySet<string> = new Set([
  'EPIPE',
  'ECONNRESET',
  'ECONNABORTED',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ERR_STREAM_DESTROYED',
  'ERR_STREAM_WRITE_AFTER_END',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

let root: string | null | undefined;
/**
 * Hotline's own code: the folder this module's folder sits in (src/ under tsx, dist/ once built). Computed on first
 * use, not at import: a plugin that bundles `hotline` into CommonJS evaluates this module where `import.meta.url`
 * is undefined, and must still load. There, no frame counts as hotline's.
 */
function hotlineRoot(): string | null {
  if (root !== undefined) return root;
  try {
    root = fileURLToPath(new URL('..', import.meta.url));
  } catch {
    root = null;
  }
  return root;
}

export type EscapeKind = 'exception' | 'rejection';
export type EscapeSource = 'hotline' | 'plugin' | 'socket';

/** What the last resort decided about one escaped error. */
export interface Verdict {
  code: Extract<ErrorCode, 'HOTLINE_E_INTERNAL' | 'HOTLINE_E_PLUGIN_ESCAPED'>;
  source: EscapeSource;
  /** `continue`: logged and counted, the process serves on. `exit`: logged, then exit(EXIT_INTERNAL). */
  action: 'continue' | 'exit';
}

/** Counts since the process started, for `hotline status` (Host#status). */
export interface LastResortCounts {
  exceptions: number;
  rejections: number;
  /** The last one, if any: its code and message, and when. */
  last: { code: string; kind: EscapeKind; source: EscapeSource; message: string; at: number } | undefined;
}

const counts: LastResortCounts = { exceptions: 0, rejections: 0, last: undefined };

/** Errors that escaped so far in this process. */
export function lastResortCounts(): LastResortCounts {
  return { ...counts };
}

/**
 * Decide what an escaped `err` means. Pure: the tests call it with made-up errors.
 *
 * Blame goes to the innermost frame that is hotline's or a plugin's (where the error was made or thrown), except for a
 * HotlineError: that is hotline refusing its caller by name (a guard clause, before any change), so the blame is the
 * caller's, the innermost plugin frame if there is one.
 */
export function judge(kind: EscapeKind, err: unknown): Verdict {
  const errCode = (err as { code?: unknown } | null)?.code;
  if (typeof errCode === 'string' && SOCKET_CODES.has(errCode)) return { code: 'HOTLINE_E_INTERNAL', source: 'socket', action: 'continue' };
  const frames = stackFrames(err);
  const ownRoot = hotlineRoot();
  const isOurs = (f: string) => ownRoot !== null && f.includes(ownRoot);
  const isPlugin = (f: string) => !isOurs(f) && pluginFrameLabel(f) !== undefined;
  const refusal = err instanceof HotlineError;
  const blamed = refusal ? frames.find(isPlugin) : frames.find((f) => isOurs(f) || isPlugin(f));
  const plugin = blamed !== undefined && isPlugin(blamed);
  const code = plugin ? 'HOTLINE_E_PLUGIN_ESCAPED' : 'HOTLINE_E_INTERNAL';
  const source = plugin ? 'plugin' : 'hotline';
  if (kind === 'rejection') return { code, source, action: 'continue' };
  // A stack cut off at the limit may hide a hotline frame below what it shows.
  const complete = frames.length < (Error.stackTraceLimit ?? 10);
  const unwoundOurs = !refusal && frames.some(isOurs);
  return { code, source, action: plugin && complete && !unwoundOurs ? 'continue' : 'exit' };
}

/** What the last resort touches: the process it listens on, where it logs, how it exits. Fakes in the tests. */
export interface LastResortDeps {
  process: Pick<NodeJS.EventEmitter, 'on' | 'off'>;
  logger: { error(obj: object, msg: string): void; fatal(obj: object, msg: string): void };
  exit(code: number): void;
  /** For the log-rate bound; default Date.now. */
  now?: () => number;
  /** A plugin's escaped error: count it against its version (default: the live-version registry's reportEscape). */
  blame?: (err: unknown, kind: string) => void;
}

/** Log lines per second at most: an escape in a hot path must not turn into a disk-filling loop. Counting goes on. */
const MAX_LOGS_PER_SECOND = 10;

/** The installed handlers; `uninstall()` removes them (tests, or a host embedded in a process that has its own). */
export interface LastResort {
  uninstall(): void;
}

const installed = new WeakSet<object>();

/**
 * Install the handlers on `deps.process` (default: this process, logging JSON to stderr synchronously, so the line
 * is written before an exit). Idempotent per process object: a second install returns a no-op.
 *
 * @example
 * installLastResort('worker');
 */
export function installLastResort(role: 'worker' | 'supervisor' | 'host', deps: Partial<LastResortDeps> = {}): LastResort {
  const proc = deps.process ?? process;
  if (installed.has(proc)) return { uninstall: () => undefined };
  installed.add(proc);
  const logger = deps.logger ?? pino({ level: 'info', base: { pid: process.pid, role } }, pino.destination({ dest: 2, sync: true }));
  const exit = deps.exit ?? ((code: number) => process.exit(code));
  const now = deps.now ?? Date.now;
  const blame = deps.blame ?? reportEscape;
  let windowStart = 0;
  let logged = 0;
  let suppressed = 0;
  let exiting = false;

  const handle = (kind: EscapeKind, err: unknown) => {
    if (exiting) return;
    const v = judge(kind, err);
    if (kind === 'exception') counts.exceptions++;
    else counts.rejections++;
    const message = safeMessage(err);
    const t = now();
    counts.last = { code: v.code, kind, source: v.source, message, at: t };
    const entry = { code: v.code, kind, source: v.source, action: v.action, role, err: err instanceof Error ? err : { message } };
    const text = `${v.code}: an ${kind === 'exception' ? 'uncaught exception' : 'unhandled rejection'} escaped ${v.source === 'plugin' ? 'plugin' : 'hotline'} code: ${message}`;
    try {
      if (v.action === 'exit') {
        exiting = true;
        logger.fatal(entry, `${text}; exiting with ${EXIT_INTERNAL} for a restart`);
      } else {
        if (t - windowStart >= 1000) {
          if (suppressed > 0) logger.error({ code: v.code, suppressed, role }, `${suppressed} more escaped errors were counted but not logged`);
          windowStart = t;
          logged = 0;
          suppressed = 0;
        }
        if (logged++ < MAX_LOGS_PER_SECOND) logger.error(entry, `${text}; serving on`);
        else suppressed++;
      }
    } catch {
      // The logger itself failed: the count above and the exit below still happen.
    }
    if (v.source === 'plugin') {
      try {
        blame(err, kind === 'exception' ? 'uncaught exception' : 'unhandled rejection');
      } catch {
        // Counting against the version is best effort: this is the process's last line of defence.
      }
    }
    if (v.action === 'exit') exit(EXIT_INTERNAL);
  };
  const onException = (err: unknown) => handle('exception', err);
  const onRejection = (reason: unknown) => handle('rejection', reason);
  proc.on('uncaughtException', onException);
  proc.on('unhandledRejection', onRejection);
  return {
    uninstall() {
      proc.off('uncaughtException', onException);
      proc.off('unhandledRejection', onRejection);
      installed.delete(proc);
    },
  };
}

function safeMessage(err: unknown): string {
  try {
    return messageOf(err).slice(0, 500);
  } catch {
    return 'an error whose message cannot be read';
  }
}
