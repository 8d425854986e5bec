/**
 * Newline-delimited text: each message is UTF-8 text ending in `\n` (a trailing `\r` is dropped). Messages a plugin
 * sends as bytes are written as they are, followed by `\n`.
 */
import type { MessageData } from '../plugin/contract.js';
import type { Decoder, Framing } from './framing.js';

const NL = 0x0a;
const CR = 0x0d;

class LineDecoder implements Decoder {
  #parts: Buffer[] = [];
  #pending = 0;
  #max: number;

  constructor(maxPayload: number) {
    this.#max = maxPayload;
  }

  get pendingBytes(): number {
    return this.#pending;
  }

  unconsumed(): Buffer {
    return Buffer.concat(this.#parts, this.#pending);
  }

  write(chunk: Buffer, onMessage: (data: MessageData) => void): boolean {
    let start = 0;
    let nl: number;
    while ((nl = chunk.indexOf(NL, start)) !== -1) {
      let line: Buffer;
      if (this.#parts.length > 0) {
        this.#parts.push(chunk.subarray(start, nl));
        line = Buffer.concat(this.#parts, this.#pending + nl - start);
        this.#parts = [];
        this.#pending = 0;
      } else {
        line = chunk.subarray(start, nl);
      }
      start = nl + 1;
      // The CR of a CRLF ending is framing, not payload: a message of exactly maxPayload bytes passes either way.
      const end = line.length > 0 && line[line.length - 1] === CR ? line.length - 1 : line.length;
      if (end > this.#max) return false;
      onMessage(line.toString('utf8', 0, end));
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      this.#pending += rest.length;
      // One byte of slack for a CR whose LF has not arrived yet.
      if (this.#pending > this.#max + 1) return false;
      // A copy: a few pending bytes must not pin the whole read buffer, nor change if the caller reuses it.
      this.#parts.push(Buffer.from(rest));
    }
    return true;
  }
}

export const lines: Framing = {
  kind: 'lines',
  createDecoder: (maxPayload) => new LineDecoder(maxPayload),
  encode(data: MessageData) {
    return typeof data === 'string' ? data + '\n' : Buffer.concat([data, Buffer.from('\n')]);
  },
};
