/**
 * The session store of a supervised worker (`hotline start --sessions`): a {@link FileSessionStore} that one worker
 * at a time holds, through an `owner` file (its pid) in the store directory.
 *
 * Why a lease: a FileSessionStore reads the whole log when it opens and compacts it by renaming a new file over it.
 * During a process upgrade the new worker starts while the old one still serves and writes, so opening at once
 * would (a) miss every message the old worker stores from then on, and (b) swap the log out from under the old
 * worker's file descriptor, losing its later writes. So the new worker waits until the old one has sent away its
 * session clients and closed the store (it removes the owner file), or has died (kill -9: its pid is gone), and only
 * then opens. Until then every store call waits; `secret()` does not, so the worker can report ready and be handed
 * the plain connections meanwhile.
 *
 *   waiting ──owner gone──► open ──close()──► closed
 *      └──────────────close()──────────────────┘
 */
import fs from 'node:fs';
import path from 'node:path';
import { HotlineError, messageOf } from '../errors.js';
import { FileSessionStore } from '../session/file-store.js';
import type { SessionChange, SessionRecord, SessionStore } from '../session/store.js';

export type LeasePhase = 'waiting' | 'open' | 'closed';

/** How often a waiting worker looks at the owner file. A resume waits at most this long after the old worker is done. */
const POLL_MS = 20;

export class LeasedSessionStore implements SessionStore {
  readonly dir: string;
  readonly maxReplay?: number;
  #phase: LeasePhase = 'waiting';
  #ownerPath: string;
  #store: FileSessionStore | undefined;
  #opened: Promise<FileSessionStore>;
  #timer: NodeJS.Timeout | undefined;
  #secret: Uint8Array | undefined;
  #giveUp: ((err: HotlineError) => void) | undefined;

  /** Start waiting for the lease on `dir` (created if missing); opens at once when nobody holds it. */
  constructor(dir: string) {
    this.dir = path.resolve(dir);
    this.#ownerPath = path.join(this.dir, 'owner');
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    this.#opened = new Promise((resolve, reject) => {
      this.#giveUp = reject;
      const attempt = () => {
        this.#timer = undefined;
        if (!this.#free()) {
          this.#timer = setTimeout(attempt, POLL_MS);
          // Waiting must never keep a worker that is otherwise done alive.
          this.#timer.unref();
          return;
        }
        try {
          fs.writeFileSync(this.#ownerPath, `${process.pid}\n`, { mode: 0o600 });
          this.#store = new FileSessionStore(this.dir);
          this.#phase = 'open';
          resolve(this.#store);
        } catch (err) {
          reject(err instanceof HotlineError ? err : new HotlineError('HOTLINE_E_SESSION_STORE', `cannot open the session store in ${this.dir}: ${messageOf(err)}`, { cause: err }));
        }
      };
      attempt();
    });
    // Callers see the rejection through their own calls; this one only keeps it from being reported as unhandled.
    this.#opened.catch(() => undefined);
  }

  get phase(): LeasePhase {
    return this.#phase;
  }

  /** Resolves once this worker holds the store. */
  whenOpen(): Promise<void> {
    return this.#opened.then(() => undefined);
  }

  secret(): Uint8Array | Promise<Uint8Array> {
    if (this.#store) return this.#store.secret();
    if (this.#secret) return this.#secret;
    // The same file FileSessionStore keeps its key in (hex, one line). Reading it does not disturb the holder; when it
    // does not exist yet, nobody created the store and the lease is about to open it.
    try {
      this.#secret = Buffer.from(fs.readFileSync(path.join(this.dir, 'secret'), 'utf8').trim(), 'hex');
      return this.#secret;
    } catch {
      return this.#opened.then((s) => s.secret());
    }
  }

  // The open store is called directly, without a promise: the file store's writes are synchronous, and the session
  // layer sends at once when `write` returns nothing (the hot path of every message).
  get(id: string): SessionRecord | undefined | Promise<SessionRecord | undefined> {
    return this.#store ? this.#store.get(id) : this.#opened.then((s) => s.get(id));
  }

  write(id: string, change: SessionChange): void | Promise<void> {
    return this.#store ? this.#store.write(id, change) : this.#opened.then((s) => s.write(id, change));
  }

  delete(id: string): void | Promise<void> {
    return this.#store ? this.#store.delete(id) : this.#opened.then((s) => s.delete(id));
  }

  expire(before: number): void | Promise<void> {
    return this.#store ? this.#store.expire(before) : this.#opened.then((s) => s.expire(before));
  }

  /** Close the store and give up the lease (the next worker opens at once). Idempotent. */
  close(): void {
    if (this.#phase === 'closed') return;
    const held = this.#phase === 'open';
    this.#phase = 'closed';
    clearTimeout(this.#timer);
    // Calls still waiting for the lease fail rather than wait forever (a no-op once the store opened).
    this.#giveUp?.(new HotlineError('HOTLINE_E_SESSION_STORE', 'the session store was closed before it opened'));
    if (!held) return;
    this.#store!.close();
    this.#store = undefined;
    // Only our own lease: never remove one a newer worker already wrote.
    if (ownerPid(this.#ownerPath) === process.pid) fs.rmSync(this.#ownerPath, { force: true });
  }

  #free(): boolean {
    const pid = ownerPid(this.#ownerPath);
    return pid === undefined || pid === process.pid || !alive(pid);
  }
}

function ownerPid(file: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Signal 0 checks that a process exists without touching it (EPERM: it exists, owned by someone else). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
