/**
 * Length-prefixed binary: each message is a 4-byte big-endian unsigned length followed by that many bytes. Messages
 * arrive in plugins as Uint8Array; a string a plugin sends is encoded as UTF-8.
 */
import type { MessageData } from '../plugin/contract.js';
import type { Decoder, Framing } from './framing.js';

const HEADER = 4;

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
   * Payload bytes received of that frame. A part that is at least half of its read buffer is kept as a view of it;
   * a smaller one is copied. So a partial frame pins at most twice its bytes, and the common large frame (or a
   * hostile one held open, bench R2) is not copied twice: the copies were external memory enough to start V8's
   * full collections, which every other client waits through.
   */
  #parts: Buffer[] = [];
  #got = 0;

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
        const part = chunk.subarray(off, off + n);
        this.#parts.push(n * 2 >= chunk.buffer.byteLength ? part : Buffer.from(part));
        this.#got += n;
        off += n;
      }
      if (this.#got === this.#size) onMessage(this.#take());
    }
    return true;
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
