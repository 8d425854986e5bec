/**
 * A tiny typed event emitter for the client. node:events is not in browsers, and the client must run in both.
 */
export type Listener<A extends unknown[]> = (...args: A) => void;

export class Emitter<E extends { [K in keyof E]: unknown[] }> {
  #listeners = new Map<keyof E, Array<Listener<unknown[]>>>();

  /** Add a listener; returns a function that removes it. */
  on<K extends keyof E>(event: K, fn: Listener<E[K]>): () => void {
    const list = this.#listeners.get(event) ?? [];
    list.push(fn as unknown as Listener<unknown[]>);
    this.#listeners.set(event, list);
    return () => this.off(event, fn);
  }

  off<K extends keyof E>(event: K, fn: Listener<E[K]>): void {
    const list = this.#listeners.get(event);
    if (!list) return;
    const i = list.indexOf(fn as unknown as Listener<unknown[]>);
    if (i !== -1) list.splice(i, 1);
  }

  protected emit<K extends keyof E>(event: K, ...args: E[K]): void {
    const list = this.#listeners.get(event);
    if (!list) return;
    for (const fn of list.slice()) (fn as unknown as Listener<E[K]>)(...args);
  }
}
