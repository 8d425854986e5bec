/**
 * Length-prefixed binary: each message is a 4-byte big-endian unsigned length followed by that many bytes. Messages
 * arrive in plugins as Uint8Array; a string a plugin sends is encoded as UTF-8.
 */
import type { MessageData } from '../plugin/contract.js';
import type { Decoder, Framing } from './framing.js';

const HEADER = 4;
/**
 * A part at least this large, and at least half of its read buffer, is kept as a view of that buffer. Smaller parts
 * are copied into one buffer of this size, filled in turn. So a partial frame holds at most about twice its bytes
 * plus this, and one object per this many bytes: a peer trickling a frame a byte per read must not make the host
 * keep a Buffer per byte (500,000 one-byte reads held 229 MB of RSS for 0.5 MB counted).
 */
const PART_BYTES = 16 * 1024;

/**
 * Assembles each frame from the chunks it arrives in, and joins them once into the message: the earlier decoder
 * concatenated the whole pending buffer on every chunk, quadratic in the frame size (issue 9). Memory follows the
 * bytes received, not the length a header claims: a 4-byte header alone must not make the host allocate maxPayload.
 */
class LengthDecoder implements Decoder {
  #max: number;
  #header = Buffer.alloc(HEADER);
  /** Header bytes received of the frame under way (0..4). */
  #headerLen = 0;
  /** Payload size of the frame under way, once its header is complete; -1 before. */
  #size = -1;
  /**
   * Payload bytes received of that frame: views of large read buffers, and copies of small parts (PART_BYTES). The
   * large frame (or a hostile one held open, bench R2) is not copied twice: the copies were external memory enough
   * to start V8's full collections, which every other client waits through.
   */
  #parts: Buffer[] = [];
  #got = 0;
  /** The copy small parts are appended to, when the last part is one with room left; how much of it is used. */
  #tail: Buffer | undefined;
  #tailUsed = 0;

  constructor(maxPayload: number) {
    this.#max = maxPayload;
  }

  get pendingBytes(): number {
    return this.#headerLen + this.#got;
  }

  unconsumed(): Buffer {
    return Buffer.concat([this.#header.subarray(0, this.#headerLen), ...this.#parts], this.pendingBytes);
  }

  write(chunk: Buffer, onMessage: (data: MessageData) => void): boolean {
    const len = chunk.length;
    let off = 0;
    while (off < len) {
      if (this.#size < 0) {
        let size: number;
        if (this.#headerLen === 0 && len - off >= HEADER) {
          size = chunk.readUInt32BE(off);
          // Refuse on the header alone: never buffer up to 4 GiB to find out a frame is too big.
          if (size > this.#max) return false;
          if (len - off - HEADER >= size) {
            // The whole frame is in this chunk (the common case): one copy, so a plugin that keeps the message does
            // not pin the read buffer.
            onMessage(new Uint8Array(chunk.subarray(off + HEADER, off + HEADER + size)));
            off += HEADER + size;
            continue;
          }
          chunk.copy(this.#header, 0, off, off + HEADER);
          off += HEADER;
        } else {
          const n = Math.min(HEADER - this.#headerLen, len - off);
          chunk.copy(this.#header, this.#headerLen, off, off + n);
          off += n;
          if (this.#headerLen + n < HEADER) {
            this.#headerLen += n;
            break;
          }
          size = this.#header.readUInt32BE(0);
          if (size > this.#max) return false;
        }
        this.#headerLen = HEADER;
        this.#size = size;
      }
      const n = Math.min(this.#size - this.#got, len - off);
      if (n > 0) {
        this.#addPart(chunk, off, n);
        this.#got += n;
        off += n;
      }
      if (this.#got === this.#size) onMessage(this.#take());
    }
    return true;
  }

  #addPart(chunk: Buffer, off: number, n: number): void {
    if (n >= PART_BYTES && n * 2 >= chunk.buffer.byteLength) {
      this.#tail = undefined;
      this.#parts.push(chunk.subarray(off, off + n));
      return;
    }
    let tail = this.#tail;
    if (tail === undefined || tail.length - this.#tailUsed < n) {
      // Never past the frame's end; not from Buffer's shared pool, which a partial frame would pin.
      tail = this.#tail = Buffer.allocUnsafeSlow(Math.min(Math.max(PART_BYTES, n), this.#size - this.#got));
      this.#tailUsed = 0;
      this.#parts.push(tail);
    }
    chunk.copy(tail, this.#tailUsed, off, off + n);
    this.#tailUsed += n;
    this.#parts[this.#parts.length - 1] = tail.subarray(0, this.#tailUsed);
  }

  /** The frame under way is complete: its payload as one message, and the decoder back at a boundary. */
  #take(): Uint8Array {
    const out = new Uint8Array(this.#size);
    let at = 0;
    for (const p of this.#parts) {
      out.set(p, at);
      at += p.length;
    }
    this.#parts = [];
    this.#tail = undefined;
    this.#got = 0;
    this.#size = -1;
    this.#headerLen = 0;
    return out;
  }
}

export const lengthPrefixed: Framing = {
  kind: 'length',
  createDecoder: (maxPayload) => new LengthDecoder(maxPayload),
  encode(data: MessageData) {
    const body = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    const out = Buffer.allocUnsafe(HEADER + body.length);
    out.writeUInt32BE(body.length, 0);
    out.set(body, HEADER);
    return out;
  },
};
