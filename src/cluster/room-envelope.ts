/**
 * The bytes of one room message between nodes (the cluster bus, room-bus.ts), and the subject it travels on.
 *
 *   0      u8   0x48 ('H'): a hotline room envelope
 *   1      u8   version, 1
 *   2      u8   flags: bit 0 set = binary payload (WS binary, TCP length frame), clear = text;
 *              bit 1 set = a direct message to one connection (on the direct subject)
 *   3      u8   n, the length of the origin (1..64)
 *   4      n    origin: the sending node's name and process epoch, [A-Za-z0-9_.~-]
 *   4+n    u32  stream: which of the origin's counters for this room (a counter dropped from its bounded table and
 *              made again is a new stream, so its restart at 1 is not a duplicate)
 *   8+n    f64  seq: 1, 2, 3 … per (origin, room, stream), an integer
 *   16+n   …    direct only: u8 m, the length of the connection id, and its m bytes (src/connection/conn-id.ts)
 *   …      …    the payload
 *
 * Binary and tiny on purpose: the envelope costs one small header per message and one copy, and nothing in it is
 * parsed as JSON. Everything that arrives from NATS is read by {@link decodeEnvelope}, which refuses by reason instead
 * of throwing: any client with access to the NATS account can publish on these subjects.
 */
import { isConnectionId } from '../connection/conn-id.js';
import type { MessageData } from '../plugin/contract.js';

const MAGIC = 0x48;
const VERSION = 1;
const FLAG_BINARY = 1;
const FLAG_DIRECT = 2;
export const MAX_ORIGIN_BYTES = 64;
const ORIGIN_PATTERN = /^[A-Za-z0-9_.~-]{1,64}$/;
/** Bytes of header before the origin, and after it; and the most a direct message's id field takes. */
const HEAD = 4;
const TAIL = 12;
const MAX_TARGET_FIELD = 1 + 49;

export interface Envelope {
  origin: string;
  stream: number;
  seq: number;
  /** A direct message: the id of the connection it is for. */
  target?: string;
  data: MessageData;
}

/** Why an inbound envelope was refused: its size, or its shape (field named in `detail`). */
export type EnvelopeProblem = { reason: 'too-large' | 'malformed'; detail: string };

/** True for a string usable as an origin: what a node writes, and what a reader accepts. */
export function isOrigin(s: string): boolean {
  return ORIGIN_PATTERN.test(s);
}

/** An origin for this process: the node's name, made safe and short, then `~` and the process epoch. */
export function originOf(node: string, epoch: string): string {
  const safe = node.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, MAX_ORIGIN_BYTES - 1 - epoch.length) || 'node';
  return `${safe}~${epoch}`;
}

/**
 * The bytes of an envelope. `origin` must pass {@link isOrigin} (the bus checks it once, at start), `target`, when
 * given, {@link isConnectionId} (the caller checks it).
 */
export function encodeEnvelope(origin: string, stream: number, seq: number, data: MessageData, target?: string): Buffer {
  const binary = typeof data !== 'string';
  const payloadLength = binary ? data.byteLength : Buffer.byteLength(data);
  const n = origin.length;
  const t = target === undefined ? 0 : 1 + target.length;
  const out = Buffer.allocUnsafe(HEAD + n + TAIL + t + payloadLength);
  out[0] = MAGIC;
  out[1] = VERSION;
  out[2] = (binary ? FLAG_BINARY : 0) | (target === undefined ? 0 : FLAG_DIRECT);
  out[3] = n;
  out.write(origin, HEAD, 'latin1');
  out.writeUInt32BE(stream >>> 0, HEAD + n);
  out.writeDoubleBE(seq, HEAD + n + 4);
  let off = HEAD + n + TAIL;
  if (target !== undefined) {
    out[off] = target.length;
    out.write(target, off + 1, 'latin1');
    off += t;
  }
  if (binary) out.set(data, off);
  else out.write(data, off, 'utf8');
  return out;
}

/**
 * Read an envelope from NATS, or say why not. `maxPayload` bounds the payload (the host's own `limits.maxPayload`,
 * so a peer cannot make this node deliver what its own clients could not send). A binary payload is copied: the
 * NATS client reuses its read buffer.
 */
export function decodeEnvelope(bytes: Uint8Array, maxPayload: number): Envelope | EnvelopeProblem {
  if (bytes.byteLength > HEAD + MAX_ORIGIN_BYTES + TAIL + MAX_TARGET_FIELD + maxPayload) {
    return { reason: 'too-large', detail: `${bytes.byteLength} bytes, over the ${maxPayload}-byte payload bound and its header` };
  }
  if (bytes.byteLength < HEAD + 1 + TAIL) return { reason: 'malformed', detail: `${bytes.byteLength} bytes, shorter than any envelope` };
  if (bytes[0] !== MAGIC) return { reason: 'malformed', detail: 'not a hotline room envelope (first byte)' };
  if (bytes[1] !== VERSION) return { reason: 'malformed', detail: `envelope version ${bytes[1]}, this node reads ${VERSION}` };
  const flags = bytes[2]!;
  if ((flags & ~(FLAG_BINARY | FLAG_DIRECT)) !== 0) return { reason: 'malformed', detail: `unknown flags 0x${flags.toString(16)}` };
  const n = bytes[3]!;
  if (n < 1 || n > MAX_ORIGIN_BYTES) return { reason: 'malformed', detail: `origin length ${n}` };
  if (bytes.byteLength < HEAD + n + TAIL) return { reason: 'malformed', detail: 'the envelope ends inside its header' };
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const origin = buf.toString('latin1', HEAD, HEAD + n);
  if (!isOrigin(origin)) return { reason: 'malformed', detail: 'origin has characters outside [A-Za-z0-9_.~-]' };
  const stream = buf.readUInt32BE(HEAD + n);
  const seq = buf.readDoubleBE(HEAD + n + 4);
  if (!Number.isSafeInteger(seq) || seq < 1) return { reason: 'malformed', detail: `seq ${seq} is not a positive integer` };
  let start = HEAD + n + TAIL;
  let target: string | undefined;
  if ((flags & FLAG_DIRECT) !== 0) {
    if (buf.byteLength < start + 1) return { reason: 'malformed', detail: 'the envelope ends before its connection id' };
    const m = buf[start]!;
    if (buf.byteLength < start + 1 + m) return { reason: 'malformed', detail: 'the envelope ends inside its connection id' };
    target = buf.toString('latin1', start + 1, start + 1 + m);
    if (!isConnectionId(target)) return { reason: 'malformed', detail: 'the connection id is not one' };
    start += 1 + m;
  }
  if (buf.byteLength - start > maxPayload) return { reason: 'too-large', detail: `payload of ${buf.byteLength - start} bytes, over ${maxPayload}` };
  // Text: Buffer's decoder replaces ill-formed UTF-8 with U+FFFD, so what reaches a WebSocket text frame is valid.
  const data: MessageData = (flags & FLAG_BINARY) !== 0 ? Buffer.from(buf.subarray(start)) : buf.toString('utf8', start);
  return target === undefined ? { origin, stream, seq, data } : { origin, stream, seq, target, data };
}

/** True when {@link decodeEnvelope} refused. */
export function isProblem(e: Envelope | EnvelopeProblem): e is EnvelopeProblem {
  return 'reason' in e;
}

/**
 * The subject of a room: `<prefix>.room.<token>`, the token being the room name's UTF-8 in base64url. A room name may
 * hold any character (room-name.ts), a subject token may not hold `.`, `*`, `>` or white space: base64url has none of
 * them, and maps distinct names to distinct tokens. 255 bytes of name make 340 characters.
 */
export function roomSubject(prefix: string, room: string): string {
  return `${prefix}.room.${Buffer.from(room, 'utf8').toString('base64url')}`;
}

/** The subject every node listens on for direct messages: `<prefix>.direct`. */
export function directSubject(prefix: string): string {
  return `${prefix}.direct`;
}

/** What a cluster name must be: one subject token of safe characters. */
export const CLUSTER_NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
