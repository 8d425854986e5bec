/**
 * The default session store: a Map in this process. Sessions survive reconnects and a host restarted inside the same
 * process (two hosts can share one instance), not the death of the process.
 */
import { randomBytes } from 'node:crypto';
import { applyChange, DEFAULT_MAX_REPLAY, type SessionChange, type SessionRecord, type SessionStore, type StoreOptions } from './store.js';

/**
 * An in-memory {@link SessionStore}.
 *
 * @example
 * import { createHost, MemorySessionStore } from 'hotline';
 * const store = new MemorySessionStore({ maxReplay: 500 });
 * const host = await createHost({ plugin: './plugin.ts', sessions: { store } });
 */
export class MemorySessionStore implements SessionStore {
  #records = new Map<string, SessionRecord>();
  #secret = randomBytes(32);
  readonly maxReplay: number;

  constructor(options: StoreOptions = {}) {
    this.maxReplay = options.maxReplay ?? DEFAULT_MAX_REPLAY;
  }

  /** Sessions held. */
  get size(): number {
    return this.#records.size;
  }

  secret(): Uint8Array {
    return this.#secret;
  }

  get(id: string): SessionRecord | undefined {
    const r = this.#records.get(id);
    // A copy: the caller owns what it resumes, and later writes must not change it under its feet.
    return r && { ...r, out: r.out.slice() };
  }

  write(id: string, change: SessionChange): void {
    applyChange(this.#records, id, change, this.maxReplay);
  }

  delete(id: string): void {
    this.#records.delete(id);
  }

  /** @internal True when a session is held: the file store logs a delete only for those. */
  has(id: string): boolean {
    return this.#records.has(id);
  }

  /** @internal The live records, not copies: for a store that persists them (file-store compaction). */
  values(): IterableIterator<SessionRecord> {
    return this.#records.values();
  }

  expire(before: number): void {
    for (const [id, r] of this.#records) if (r.touchedAt < before) this.#records.delete(id);
  }

  close(): void {}
}
