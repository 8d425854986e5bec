/**
 * A direct channel from the old worker to the new one that carries socket handles without Node's per-handle ack.
 *
 * Node's IPC writes one handle, then waits for the receiver's NODE_HANDLE_ACK before the next: about 190 µs per
 * socket per hop on the 2-core test machine, and an upgrade crossed two hops (old worker → supervisor → new
 * worker). Node waits because it cannot tell which message a received descriptor belongs to. A lane can: each
 * handle travels in the same write as its message, and a Unix stream socket hands over the descriptors of one
 * write with the read that reaches that write's first byte, never later (Linux stops a read after a buffer that
 * carried descriptors). So descriptors arrive in message order, no later than their message, and the reader pairs
 * them first-in first-out. Measured in a throwaway experiment: 26 µs per socket through one lane, 5,000 sockets.
 *
 * The lane is a socketpair the supervisor creates when it forks the new worker (stdio fd 4) and passes the other end
 * to the old worker. Node makes only its one `'ipc'` stdio able to carry descriptors, so both ends open the
 * descriptor as an IPC pipe through Node's pipe_wrap binding: Node internals, reached through
 * src/internals/node-internals.ts and covered by test/handoff/upgrade.test.ts. Frames: u32 LE length, u8 has-handle,
 * then the message: serialised with v8 (the format of `serialization: 'advanced'`), or by the lane's codec.
 */
import v8 from 'node:v8';
import { type PipeHandle, type StreamBinding, type WriteReq, handleFd, pipeWrap, streamWrap } from '../internals/node-internals.js';
import { LANE_HEADER as HEADER, splitLaneFrames } from './lane-frames.js';

const EMPTY = Buffer.alloc(0);
/** Writes handed to libuv at once. */
const WINDOW = 64;

/** The stdio index of the lane in the new worker (0-2 are stdio, 3 is Node's IPC channel). */
export const LANE_FD = 4;

/** How a lane turns messages into frame bodies and back (transfer-codec.ts); v8's serializer unless given. */
export interface LaneCodec<M> {
  /** The body, after `reserve` free bytes for the frame header. Throws if the message cannot be encoded. */
  encode(msg: M, reserve: number): Buffer;
  /** The message of a body; the body's memory belongs to the read, so keep copies only. */
  decode(body: Buffer): M;
}

/** v8's serializer, the format of `serialization: 'advanced'`: the default codec, and transfer-codec.ts's fallback. */
export const V8_CODEC: LaneCodec<unknown> = {
  encode(msg, reserve) {
    const body = v8.serialize(msg);
    const frame = Buffer.allocUnsafe(reserve + body.length);
    body.copy(frame, reserve);
    return frame;
  },
  decode: (body) => v8.deserialize(body),
};

export class HandleLane<M> {
  #pipe: PipeHandle;
  #stream: StreamBinding;
  #pending: Buffer = EMPTY;
  #handles: object[] = [];
  #closed = false;
  #failed = false;
  #out: Array<{ frame: Buffer; handle: object | undefined }> = [];
  #outHead = 0;
  #writing = 0;
  /** The wrapper the descriptor arrived in: kept, never closed, so the descriptor is not closed twice. */
  readonly origin: object | undefined;
  #codec: LaneCodec<M>;

  /**
   * Open a lane on a descriptor: the new worker's fd 4, or the fd of the pipe handle the old worker received.
   * @example
   * const lane = new HandleLane<ConnTransfer>(LANE_FD);
   * lane.read((msg, handle) => adopt(msg, handle));
   */
  constructor(fd: number, origin?: object, codec?: LaneCodec<M>) {
    this.#codec = codec ?? (V8_CODEC as LaneCodec<M>);
    const pipes = pipeWrap();
    this.#stream = streamWrap();
    this.origin = origin;
    this.#pipe = new pipes.Pipe(pipes.constants.IPC);
    const err = this.#pipe.open(fd);
    if (err) throw new Error(`cannot open the handle lane on fd ${fd} (error ${err})`);
  }

  /** Called once if a write fails (the other end is gone or refused a descriptor). */
  onError: ((err: Error) => void) | undefined;

  /**
   * Queue one message, with a handle if given. At most WINDOW writes are handed to libuv at a time: each holds its
   * frame and a descriptor in flight, and the frames must stay referenced until written (a collected frame was
   * sent as garbage in the first version of this file).
   */
  send(msg: M, handle?: object): void {
    if (this.#closed) throw new Error('the handle lane is closed');
    const frame = this.#codec.encode(msg, HEADER);
    frame.writeUInt32LE(frame.length - HEADER, 0);
    frame[4] = handle ? 1 : 0;
    this.#out.push({ frame, handle });
    this.#pump();
  }

  #pump(): void {
    const s = this.#stream;
    while (!this.#closed && this.#writing < WINDOW && this.#outHead < this.#out.length) {
      const item = this.#out[this.#outHead]!;
      this.#out[this.#outHead++] = undefined as unknown as { frame: Buffer; handle: object | undefined };
      const req = new s.WriteWrap() as WriteReq & { buffer?: Buffer; sendHandle?: object };
      req.handle = this.#pipe;
      req.async = false;
      req.buffer = item.frame;
      req.sendHandle = item.handle;
      this.#writing++;
      req.oncomplete = (status) => {
        this.#writing--;
        if (status < 0) return this.#fail(new Error(`handle lane write failed (error ${status})`));
        this.#pump();
      };
      const err = this.#pipe.writeBuffer(req, item.frame, item.handle);
      if (err) {
        this.#writing--;
        return this.#fail(new Error(`handle lane write failed (error ${err})`));
      }
      // A write that completed at once does not call oncomplete (Node's own streams check the same flag).
      if (s.streamBaseState[s.kLastWriteWasAsync] === 0) this.#writing--;
    }
    if (this.#outHead === this.#out.length) {
      this.#out = [];
      this.#outHead = 0;
    }
  }

  #fail(err: Error): void {
    if (this.#failed) return;
    this.#failed = true;
    this.onError?.(err);
  }

  /** Start reading; `onMessage` gets each message in order with its handle. */
  read(onMessage: (msg: M, handle: object | undefined) => void): void {
    const s = this.#stream;
    this.#pipe.onread = (ab) => {
      if (this.#pipe.pendingHandle) {
        this.#handles.push(this.#pipe.pendingHandle);
        this.#pipe.pendingHandle = null;
      }
      const nread = s.streamBaseState[s.kReadBytesOrError]!;
      if (nread <= 0 || !ab) return;
      const chunk = Buffer.from(ab, s.streamBaseState[s.kArrayBufferOffset]!, nread);
      try {
        this.#pending = splitLaneFrames(this.#pending, chunk, (body, hasHandle) => {
          const msg = this.#codec.decode(body);
          onMessage(msg, hasHandle ? this.#handles.shift() : undefined);
        });
      } catch (err) {
        // A malformed frame (HOTLINE_E_HANDOFF_FRAME from the framing or the codec) or a throw of the reader: the
        // stream cannot be trusted past it. Stop reading and report it, instead of throwing out of a libuv callback.
        this.#pipe.onread = () => undefined;
        this.#pending = EMPTY;
        this.#fail(err instanceof Error ? err : new Error(String(err)));
      }
    };
    this.#pipe.readStart();
  }

  /** Close the lane (idempotent). Writes still queued are cancelled; handles not yet taken are closed. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // Node requires a function here (the onread setter checks its type).
    this.#pipe.onread = () => undefined;
    this.#pipe.close();
    for (const h of this.#handles) (h as { close(): void }).close();
    this.#handles = [];
  }

  /** The descriptor of a pipe handle received over Node's IPC (the old worker's end of the lane). */
  static fdOf(handle: unknown): number {
    const fd = handleFd(handle);
    if (fd === undefined || fd < 0) throw new Error('the handle lane arrived without a descriptor');
    return fd;
  }
}
