/**
 * TCP framings. A decoder turns a byte stream into messages; an encoder turns a message into bytes. Decoders keep the
 * bytes they have read but not yet turned into a message, so a payload limit can be enforced before buffering more.
 */
import type { MessageData } from '../plugin/contract.js';

/** The TCP framings hotline speaks: newline-delimited text, or 4-byte big-endian length-prefixed binary. */
export type FramingKind = 'lines' | 'length';

export interface Decoder {
  /**
   * Feed bytes. Calls `onMessage` for each complete message, in order. Returns false, after the complete messages
   * before it, when a message is larger than the limit: the stream cannot be resynchronised and must be closed.
   * The chunk is handed over: a decoder may keep a view of it (of a chunk it holds most of), so the caller must not
   * reuse its buffer, as a socket's reads never are.
   */
  write(chunk: Buffer, onMessage: (data: MessageData) => void): boolean;
  /** Bytes read but not yet part of a complete message. */
  readonly pendingBytes: number;
  /** A copy of those bytes, for a process upgrade that moves the stream to another decoder (src/handoff). */
  unconsumed(): Buffer;
}

export interface Framing {
  readonly kind: FramingKind;
  createDecoder(maxPayload: number): Decoder;
  encode(data: MessageData): Buffer | string;
}
