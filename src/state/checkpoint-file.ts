/**
 * One checkpoint of a plugin's global state on disk: its format, its atomic write and its refusing read.
 *
 * The file is `state.ckpt` in the state folder:
 *
 *   "HLCKPT1\n"  8 bytes of magic
 *   u32 BE       length of the header (at most 4 KiB)
 *   header       JSON: { plugin, version, hash, at, bytes, sha256 }
 *   payload      `bytes` bytes: v8.serialize(state), the format a process upgrade moves the state in
 *
 * A write goes to a temporary file named after the process and is renamed over the checkpoint: a kill -9 at any
 * point leaves the old checkpoint or the new one, never half of one. (Without fsync: the page cache outlives the
 * process, not the machine; the file session store makes the same trade.) A read checks every field, the length and
 * the SHA-256 of the payload before v8 sees a byte, and refuses anything else with HOTLINE_E_STATE_CORRUPT; the
 * refused file is kept beside it as `state.ckpt.corrupt` for a human to look at, and the next checkpoint replaces it.
 *
 * The restore marker (`restoring`) counts the attempts to restore one checkpoint: it is written before the plugin's
 * migrate() sees the checkpoint and removed after. A worker that dies inside that migrate (a busy loop the watchdog
 * kills, a crash) leaves it behind; a checkpoint whose restore died twice is refused (HOTLINE_E_STATE_RESTORE) rather
 * than restarted into forever.
 */
import { createHash } from 'node:crypto';
import nodeFs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import { HotlineError, messageOf } from '../errors.js';

const MAGIC = Buffer.from('HLCKPT1\n', 'latin1');
const HEADER_MAX = 4096;
const PREFIX = MAGIC.length + 4;
/** Longest plugin name, version string and bundle hash a header may carry. */
const FIELD_MAX = 256;

export const CHECKPOINT_FILE = 'state.ckpt';
const CORRUPT_FILE = 'state.ckpt.corrupt';
const MARKER_FILE = 'restoring';

/** What the header says about the state it carries. */
export interface CheckpointHeader {
  /** The plugin's `name`: a checkpoint of another plugin is refused. */
  plugin: string;
  /** The `version` of the plugin version whose state this is: what migrate() sees as `prev.version`. */
  version: string;
  /** Its bundle hash. */
  hash: string;
  /** Wall-clock ms of the write. */
  at: number;
  bytes: number;
  sha256: string;
}

export interface Checkpoint {
  header: CheckpointHeader;
  state: unknown;
}

/** The file system calls this file makes, so a test can script a full disk or a failing rename. */
export type CheckpointFs = Pick<typeof nodeFs, 'readFileSync' | 'writeFileSync' | 'renameSync' | 'rmSync' | 'mkdirSync' | 'statSync'>;

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The file for `payload` (an already serialised state). */
export function encodeCheckpoint(header: Omit<CheckpointHeader, 'bytes' | 'sha256'>, payload: Uint8Array, digest = sha256(payload)): Buffer {
  const h = Buffer.from(JSON.stringify({ ...header, bytes: payload.byteLength, sha256: digest }), 'utf8');
  const prefix = Buffer.alloc(PREFIX);
  MAGIC.copy(prefix);
  prefix.writeUInt32BE(h.length, MAGIC.length);
  return Buffer.concat([prefix, h, payload]);
}

function corrupt(why: string, cause?: unknown): HotlineError {
  return new HotlineError('HOTLINE_E_STATE_CORRUPT', `the checkpoint was refused: ${why}`, cause === undefined ? undefined : { cause });
}

function shortString(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= FIELD_MAX;
}

/** Parse a checkpoint file, or throw HOTLINE_E_STATE_CORRUPT saying what is wrong with it. Every byte is untrusted. */
export function decodeCheckpoint(file: Buffer, maxBytes: number): Checkpoint {
  if (file.length < PREFIX || !file.subarray(0, MAGIC.length).equals(MAGIC)) throw corrupt('it does not start with the checkpoint magic');
  const hlen = file.readUInt32BE(MAGIC.length);
  if (hlen === 0 || hlen > HEADER_MAX || PREFIX + hlen > file.length) throw corrupt(`its header length ${hlen} is out of bounds`);
  let raw: unknown;
  try {
    raw = JSON.parse(file.subarray(PREFIX, PREFIX + hlen).toString('utf8'));
  } catch (err) {
    throw corrupt('its header is not JSON', err);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw corrupt('its header is not an object');
  const h = raw as Record<string, unknown>;
  if (!shortString(h.plugin) || !shortString(h.version) || !shortString(h.hash)) throw corrupt('its header lacks plugin, version or hash strings');
  if (typeof h.at !== 'number' || !Number.isFinite(h.at)) throw corrupt('its header has no time');
  if (!Number.isSafeInteger(h.bytes) || (h.bytes as number) < 0 || (h.bytes as number) > maxBytes) throw corrupt(`its payload length ${String(h.bytes)} is over state.maxBytes (${maxBytes}) or invalid`);
  if (typeof h.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(h.sha256)) throw corrupt('its header has no SHA-256');
  const payload = file.subarray(PREFIX + hlen);
  if (payload.length !== h.bytes) throw corrupt(`its payload is ${payload.length} bytes, its header says ${String(h.bytes)} (truncated?)`);
  if (sha256(payload) !== h.sha256) throw corrupt('its payload does not match its SHA-256 (damaged)');
  let state: unknown;
  try {
    state = v8.deserialize(payload);
  } catch (err) {
    throw corrupt(`its payload does not deserialise: ${messageOf(err)}`, err);
  }
  const header: CheckpointHeader = { plugin: h.plugin, version: h.version, hash: h.hash, at: h.at, bytes: h.bytes as number, sha256: h.sha256 };
  return { header, state };
}

/** The checkpoint file of one state folder. One host process writes a folder at a time. */
export class CheckpointFile {
  readonly dir: string;
  readonly path: string;
  #maxBytes: number;
  #fs: CheckpointFs;

  /** Creates `dir` (0700) if missing; HOTLINE_E_STATE_WRITE if it cannot. */
  constructor(dir: string, maxBytes: number, fs: CheckpointFs = nodeFs) {
    this.dir = path.resolve(dir);
    this.path = path.join(this.dir, CHECKPOINT_FILE);
    this.#maxBytes = maxBytes;
    this.#fs = fs;
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new HotlineError('HOTLINE_E_STATE_WRITE', `cannot create the state folder ${this.dir}: ${messageOf(err)}`, { cause: err });
    }
  }

  /**
   * The checkpoint on disk, undefined when there is none. A refused one (HOTLINE_E_STATE_CORRUPT, thrown) is moved
   * aside first, so the next start does not meet it again.
   */
  read(): Checkpoint | undefined {
    let file: Buffer;
    try {
      // Checked before reading: a hostile 10 GB file must not be read into memory to be refused.
      const size = this.#fs.statSync(this.path).size;
      if (size > PREFIX + HEADER_MAX + this.#maxBytes) throw this.#setAside(corrupt(`it is ${size} bytes, over state.maxBytes (${this.#maxBytes}) plus its header`));
      file = this.#fs.readFileSync(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      if (err instanceof HotlineError) throw err;
      throw corrupt(`it cannot be read: ${messageOf(err)}`, err);
    }
    try {
      return decodeCheckpoint(file, this.#maxBytes);
    } catch (err) {
      throw this.#setAside(err as HotlineError);
    }
  }

  /** Write a checkpoint atomically (temporary file, then rename). HOTLINE_E_STATE_WRITE if the disk refuses. */
  write(header: Omit<CheckpointHeader, 'bytes' | 'sha256'>, payload: Uint8Array, digest?: string): void {
    this.#atomicWrite(this.path, encodeCheckpoint(header, payload, digest));
  }

  /** How many restores of the checkpoint with this SHA-256 started and never finished. */
  restoreAttempts(digest: string): number {
    try {
      const m = JSON.parse(this.#fs.readFileSync(path.join(this.dir, MARKER_FILE), 'utf8')) as { sha256?: unknown; attempts?: unknown };
      return m.sha256 === digest && Number.isSafeInteger(m.attempts) && (m.attempts as number) > 0 ? (m.attempts as number) : 0;
    } catch {
      // None, or one this code did not write: no attempt is known.
      return 0;
    }
  }

  /** Record that a restore of this checkpoint starts (attempt `attempts`). */
  markRestoring(digest: string, attempts: number): void {
    this.#atomicWrite(path.join(this.dir, MARKER_FILE), Buffer.from(JSON.stringify({ sha256: digest, attempts })));
  }

  /** The restore finished (well or not): forget the attempts. */
  clearRestoring(): void {
    try {
      this.#fs.rmSync(path.join(this.dir, MARKER_FILE), { force: true });
    } catch {
      // A marker that cannot be removed only costs one refused restore later, after two more deaths.
    }
  }

  #atomicWrite(target: string, bytes: Buffer): void {
    const tmp = `${target}.${process.pid}.tmp`;
    try {
      this.#fs.writeFileSync(tmp, bytes, { mode: 0o600 });
      this.#fs.renameSync(tmp, target);
    } catch (err) {
      try {
        this.#fs.rmSync(tmp, { force: true });
      } catch {
        // Best effort: the next write of this process reuses the name.
      }
      throw new HotlineError('HOTLINE_E_STATE_WRITE', `cannot write ${target}: ${messageOf(err)}`, { cause: err });
    }
  }

  /** Move the checkpoint aside as `state.ckpt.corrupt` (one kept): refused, but left for a human to look at. */
  setAside(): void {
    try {
      this.#fs.renameSync(this.path, path.join(this.dir, CORRUPT_FILE));
    } catch {
      // Left in place: the next checkpoint written replaces it anyway.
    }
  }

  #setAside(err: HotlineError): HotlineError {
    this.setAside();
    return err;
  }
}
