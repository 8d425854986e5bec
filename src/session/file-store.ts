/**
 * A session store for one machine: an append-only log of JSON lines in a directory, replayed at open and compacted
 * when it grows. Each write is one `write(2)` of one line, issued synchronously before the session layer sends the
 * message it records: a kill -9 cannot come between the two, and the page cache outlives the process, so sessions
 * survive a crash of the host. `fsync: true` also survives a crash of the machine, at a much higher cost per message.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { HotlineError, messageOf } from '../errors.js';
import { MemorySessionStore } from './memory-store.js';
import { type SessionChange, type SessionRecord, type SessionStore, type StoredMessage, type StoreOptions } from './store.js';

export interface FileStoreOptions extends StoreOptions {
  /** fsync after every write. Default false: kill -9 safe, not power-loss safe. */
  fsync?: boolean;
  /** Compact when the log exceeds this many bytes and twice the live data. Default 8 MiB. */
  compactBytes?: number;
}

type WireMessage = [number, string | { b: string }];
interface LogLine {
  i: string;
  /** A change, or x: 1 for a delete. */
  c?: Omit<SessionChange, 'out'> & { out?: WireMessage };
  x?: 1;
}

function toWire(m: StoredMessage): WireMessage {
  return [m[0], typeof m[1] === 'string' ? m[1] : { b: Buffer.from(m[1]).toString('base64') }];
}

function fromWire(m: WireMessage): StoredMessage {
  return [m[0], typeof m[1] === 'string' ? m[1] : new Uint8Array(Buffer.from(m[1].b, 'base64'))];
}

/**
 * A durable {@link SessionStore} in `dir` (created if missing): `sessions.log` and `secret` (mode 0600). One host
 * process at a time may use a directory.
 *
 * @example
 * import { createHost, FileSessionStore } from 'hotline';
 * const store = new FileSessionStore('.hotline/sessions');
 * const host = await createHost({ plugin: './plugin.ts', sessions: { store } });
 * // ... kill -9, start again with the same directory: clients resume where they left off.
 */
export class FileSessionStore implements SessionStore {
  readonly dir: string;
  /** The sessions themselves; this class adds the log that makes them outlive the process. */
  #mem: MemorySessionStore;
  #secret: Buffer;
  #fd = -1;
  #logPath: string;
  #logBytes = 0;
  readonly maxReplay: number;
  #fsync: boolean;
  #compactBytes: number;
  #closed = false;

  constructor(dir: string, options: FileStoreOptions = {}) {
    this.dir = path.resolve(dir);
    this.#mem = new MemorySessionStore(options);
    this.maxReplay = this.#mem.maxReplay;
    this.#fsync = options.fsync ?? false;
    this.#compactBytes = options.compactBytes ?? 8 * 1024 * 1024;
    this.#logPath = path.join(this.dir, 'sessions.log');
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      this.#secret = this.#loadSecret();
      this.#replay();
      this.#compact();
      this.#fd = fs.openSync(this.#logPath, 'a', 0o600);
    } catch (err) {
      throw new HotlineError('HOTLINE_E_SESSION_STORE', `cannot open the session store in ${this.dir}: ${messageOf(err)}`, { cause: err });
    }
  }

  /** Sessions held. */
  get size(): number {
    return this.#mem.size;
  }

  secret(): Uint8Array {
    return this.#secret;
  }

  get(id: string): SessionRecord | undefined {
    return this.#mem.get(id);
  }

  write(id: string, change: SessionChange): void {
    this.#mem.write(id, change);
    const line: LogLine = { i: id, c: change.out ? { ...change, out: toWire(change.out) } : (change as LogLine['c']) };
    this.#append(JSON.stringify(line) + '\n');
  }

  delete(id: string): void {
    if (!this.#mem.has(id)) return;
    this.#mem.delete(id);
    this.#append(JSON.stringify({ i: id, x: 1 }) + '\n');
  }

  expire(before: number): void {
    const held = this.#mem.size;
    this.#mem.expire(before);
    if (this.#mem.size < held && !this.#closed) this.#compact();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    fs.closeSync(this.#fd);
  }

  #append(text: string): void {
    if (this.#closed) throw new HotlineError('HOTLINE_E_SESSION_STORE', 'the file session store is closed');
    const n = fs.writeSync(this.#fd, text);
    if (this.#fsync) fs.fsyncSync(this.#fd);
    this.#logBytes += n;
    if (this.#logBytes > this.#compactBytes) this.#compact();
  }

  #loadSecret(): Buffer {
    const p = path.join(this.dir, 'secret');
    try {
      return Buffer.from(fs.readFileSync(p, 'utf8').trim(), 'hex');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const secret = randomBytes(32);
    // wx: if another process created it first, use theirs.
    try {
      fs.writeFileSync(p, secret.toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
      return secret;
    } catch {
      return Buffer.from(fs.readFileSync(p, 'utf8').trim(), 'hex');
    }
  }

  #replay(): void {
    let text: string;
    try {
      text = fs.readFileSync(this.#logPath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const raw of text.split('\n')) {
      if (raw.length === 0) continue;
      let line: LogLine;
      try {
        line = JSON.parse(raw) as LogLine;
      } catch {
        // A line torn by a crash of the machine (not possible with kill -9): the writes before it stand.
        continue;
      }
      if (line.x) this.#mem.delete(line.i);
      else if (line.c) this.#mem.write(line.i, { ...line.c, out: line.c.out && fromWire(line.c.out) });
    }
  }

  /** Rewrite the log as one line per live session, through a rename so a crash leaves the old or the new log. */
  #compact(): void {
    const tmp = this.#logPath + '.tmp';
    const lines: string[] = [];
    for (const r of this.#mem.values()) {
      const c: LogLine['c'] = { create: true, connId: r.connId, inSeq: r.inSeq, state: r.state, touchedAt: r.touchedAt, gen: r.gen ?? 0, genConfirmed: r.genConfirmed ?? false };
      // A mark still in force (its message unhandled) must survive compaction, or a poison message gets a third try.
      if (r.suspect === r.inSeq + 1) c.suspect = r.suspect;
      if (r.rooms !== undefined && r.rooms.length > 0) c.rooms = r.rooms;
      lines.push(JSON.stringify({ i: r.id, c }));
      // outSeq is restored by the last out line; a session with nothing unacked keeps it through a marker line.
      if (r.out.length === 0 && r.outSeq > 0) lines.push(JSON.stringify({ i: r.id, c: { outSeq: r.outSeq, touchedAt: r.touchedAt } }));
      for (const m of r.out) lines.push(JSON.stringify({ i: r.id, c: { out: toWire(m), touchedAt: r.touchedAt } }));
    }
    const text = lines.length > 0 ? lines.join('\n') + '\n' : '';
    fs.writeFileSync(tmp, text, { mode: 0o600 });
    if (this.#fsync) {
      const fd = fs.openSync(tmp, 'r');
      fs.fsyncSync(fd);
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.#logPath);
    this.#logBytes = Buffer.byteLength(text);
    this.#compactBytes = Math.max(this.#compactBytes, this.#logBytes * 2);
    if (this.#fd >= 0 && !this.#closed) {
      fs.closeSync(this.#fd);
      this.#fd = fs.openSync(this.#logPath, 'a', 0o600);
    }
  }
}
