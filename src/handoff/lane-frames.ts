/**
 * The handle lane's framing (handle-lane.ts), as a pure function so it can be tested and fuzzed without a pipe:
 * each frame is a u32 LE body length, a u8 has-handle flag (0 or 1), then the body.
 */
import { HotlineError } from '../errors.js';

/** Bytes before each frame's body. */
export const LANE_HEADER = 5;

const EMPTY = Buffer.alloc(0);

/**
 * Split `pending` (the tail of earlier reads) plus `chunk` into frames, calling `onFrame` for each complete one in
 * order, and return the bytes of the incomplete frame at the end (copied: the chunk's memory belongs to the read).
 * Throws HOTLINE_E_HANDOFF_FRAME, after the frames before it, at a has-handle byte that is neither 0 nor 1: the
 * stream is out of step and nothing after that point can be trusted.
 */
export function splitLaneFrames(pending: Buffer, chunk: Buffer, onFrame: (body: Buffer, hasHandle: boolean) => void): Buffer {
  const buf = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
  let off = 0;
  while (buf.length - off >= LANE_HEADER) {
    const len = buf.readUInt32LE(off);
    const flag = buf[off + 4]!;
    if (flag > 1) throw new HotlineError('HOTLINE_E_HANDOFF_FRAME', `a handle lane frame has has-handle byte ${flag}`);
    if (buf.length - off - LANE_HEADER < len) break;
    const body = buf.subarray(off + LANE_HEADER, off + LANE_HEADER + len);
    off += LANE_HEADER + len;
    onFrame(body, flag === 1);
  }
  // Most reads end on a frame boundary (a read stops at a buffer that carried a descriptor): nothing to copy.
  return off === buf.length ? EMPTY : Buffer.from(buf.subarray(off));
}
