/**
 * Length-prefixed binary: each message is a 4-byte big-endian unsigned length followed by that many bytes. Messages
 * arrive in plugins as Uint8Array; a string a plugin sends is encoded as UTF-8.
 */
import type { MessageData } from '../../plugin/contract.js';
import type { Decoder, Framing } from './framing.js';

const HEADER = 4;

class LengthDecoder implements Decoder {
  #buf: Buffer = Buffer.alloc(0);
  #max: number;

  constructor(maxPayload: number) {
    this.#max = maxPayload;
  }

  get pendingBytes(): number {
    return this.#buf.length;
  }

  unconsumed(): Buffer {
    return Buffer.from(this.#buf);
  }

  write(chunk: Buffer, onMessage: (data: MessageData) => void): boolean {
    let buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    while (buf.length >= HEADER) {
      const size = buf.readUInt32BE(0);
      // Refuse on the header alone: never buffer up to 4 GiB to find out a frame is too big.
      if (size > this.#max) return false;
      if (buf.length < HEADER + size) break;
      // A copy, so a plugin that keeps the message does not pin the whole read buffer.
      onMessage(new Uint8Array(buf.subarray(HEADER, HEADER + size)));
      buf = buf.subarray(HEADER + size);
    }
    this.#buf = buf.length === 0 ? Buffer.alloc(0) : Buffer.from(buf);
    return true;
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
