/**
 * One message on its way to many connections, encoded once per wire format. A room of 10,000 WebSockets costs one
 * UTF-8 encoding and one frame build, then one socket write per member: ws' own `send` would encode the string and
 * build a header again for every member (lib/sender.js `Sender.frame`).
 *
 * Members of one room usually share one format (every WebSocket frames alike; a TCP listener has one framing), so the
 * last encoder's frame is kept at hand and the others in a short list.
 */
import type { MessageData } from '../plugin/contract.js';

/** Turns a message into the bytes of one wire format. A transport keeps one instance per format: it is the cache key. */
export interface FrameEncoder {
  encode(data: MessageData): Buffer;
}

export class PreparedMessage {
  readonly data: MessageData;
  #encoder: FrameEncoder | undefined;
  #frame: Buffer | undefined;
  #others: Array<[FrameEncoder, Buffer]> | undefined;

  constructor(data: MessageData) {
    if (typeof data !== 'string' && !(data instanceof Uint8Array)) {
      throw new TypeError(`a room message must be a string or a Uint8Array, got ${typeof data}`);
    }
    this.data = data;
  }

  /** The bytes of this message in `encoder`'s format, built on first use. Shared: the caller must not modify them. */
  frame(encoder: FrameEncoder): Buffer {
    if (encoder === this.#encoder) return this.#frame!;
    if (this.#encoder === undefined) {
      this.#encoder = encoder;
      return (this.#frame = encoder.encode(this.data));
    }
    this.#others ??= [];
    for (const [e, f] of this.#others) if (e === encoder) return f;
    const f = encoder.encode(this.data);
    this.#others.push([encoder, f]);
    return f;
  }
}
