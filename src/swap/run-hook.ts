/**
 * Run one plugin hook (init, check, migrate, dispose) with the host's hookTimeout. A hook that throws or rejects
 * becomes `code`; one that does not settle in time becomes `timeoutCode`. The hook's promise is not cancelled (plugin
 * code cannot be), but its result is ignored after the timeout, so the caller commits nothing it produced late.
 */
import { type ErrorCode, HotlineError, isHotlineError, messageOf } from '../errors.js';

export interface HookSpec {
  /** The hook's name in messages, e.g. `migrate()`. */
  name: string;
  code: ErrorCode;
  timeoutCode: ErrorCode;
  timeoutMs: number;
}

/** What a hook runs for: a version's label for messages, and its stack mapping. */
export interface HookOwner {
  readonly label: string;
  mapError<E>(err: E): E;
}

export async function runHook<T>(v: HookOwner, fn: () => T | Promise<T>, spec: HookSpec): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const result = fn();
    if (!(result instanceof Promise)) return result;
    const ms = spec.timeoutMs;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new HotlineError(spec.timeoutCode, `${v.label}: ${spec.name} did not settle within ${ms} ms`)), ms);
    });
    return await Promise.race([result, timeout]);
  } catch (err) {
    if (isHotlineError(err)) throw err;
    v.mapError(err);
    throw new HotlineError(spec.code, `${v.label}: ${spec.name} failed: ${messageOf(err)}`, { cause: err });
  } finally {
    clearTimeout(timer);
  }
}
