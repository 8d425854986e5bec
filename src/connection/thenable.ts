/**
 * Whether a result is a promise to wait for. Plugin handlers (DESIGN.md §2) and session stores (session/store.ts) may
 * answer synchronously or with a promise; the sync answer is the fast path, so it is told apart without `await`.
 * Any object with a callable `then` counts, as `await` would treat it: a plugin may return another library's promise.
 */
export function isThenable<T = unknown>(v: unknown): v is PromiseLike<T> {
  return v !== null && typeof v === 'object' && typeof (v as PromiseLike<T>).then === 'function';
}
