/**
 * Waiting on an observable condition with a deadline, instead of sleeping (BRIEF: no sleeps as synchronisation).
 */

/** Poll `cond` every 5 ms until it holds; throw naming `what` after `timeoutMs`. */
export async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
