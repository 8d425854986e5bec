/**
 * The frames a `hotline.v1` client sends after its hello, before its session takes the socket: creating or restoring
 * the session may wait for the store, and the client may already be talking. They wait here, in arrival order, and
 * are handed to the session once it exists.
 *
 * Bounded by the limits every connection's inbound queue has (maxQueuedMessages, maxQueuedBytes): unbounded, a client
 * whose hello the store held could grow the host's memory for as long as it liked. Over either bound the frames are
 * dropped and the caller closes the socket (HOTLINE_E_INBOUND_OVERFLOW); nothing after that is kept.
 */
import type { ConnectionLimits } from '../connection/dispatcher.js';

type Phase = 'buffering' | 'overflowed' | 'done';

export class EarlyFrames {
  #limits: Pick<ConnectionLimits, 'maxQueuedMessages' | 'maxQueuedBytes'>;
  #frames: Array<[data: Buffer, isBinary: boolean]> = [];
  #bytes = 0;
  #phase: Phase = 'buffering';

  constructor(limits: Pick<ConnectionLimits, 'maxQueuedMessages' | 'maxQueuedBytes'>) {
    this.#limits = limits;
  }

  /**
   * Keep one frame. Returns which bound it breaks, if it does: everything kept is dropped, and later frames are
   * ignored (the caller closes the socket). Frames after an overflow or a replay are ignored too.
   */
  push(data: Buffer, isBinary: boolean): string | undefined {
    if (this.#phase !== 'buffering') return undefined;
    const { maxQueuedMessages, maxQueuedBytes } = this.#limits;
    this.#bytes += data.length;
    let over: string | undefined;
    if (this.#frames.length >= maxQueuedMessages) over = `more than maxQueuedMessages (${maxQueuedMessages}) frames`;
    else if (this.#bytes > maxQueuedBytes) over = `more than maxQueuedBytes (${maxQueuedBytes}) of frames`;
    if (over === undefined) {
      this.#frames.push([data, isBinary]);
      return undefined;
    }
    this.#drop('overflowed');
    return over;
  }

  /** Hand the frames over in arrival order, once; from then on nothing is kept. */
  replay(deliver: (data: Buffer, isBinary: boolean) => void): void {
    if (this.#phase !== 'buffering') return;
    const frames = this.#frames;
    this.#drop('done');
    for (const [d, b] of frames) deliver(d, b);
  }

  /** The hello failed: nothing will take the frames. */
  discard(): void {
    if (this.#phase === 'buffering') this.#drop('done');
  }

  #drop(phase: Phase): void {
    this.#phase = phase;
    this.#frames = [];
    this.#bytes = 0;
  }
}
