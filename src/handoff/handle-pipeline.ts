/**
 * An ordered outbox in front of one IPC channel that keeps Node's own handle queue short.
 *
 * Node's IPC carries one handle per message and writes the next only after the receiver's NODE_HANDLE_ACK. Until
 * then it queues every later message, and on each ack it hands its whole queue to `_send` again, which re-queues
 * all but the first (lib/internal/child_process.js, Node 20). Queueing 10,000 connections at once therefore costs
 * O(n²): about 50 million re-queues, most of the 10.6 s the first version of the upgrade took for 10,000 sockets.
 *
 * This outbox holds the backlog itself (O(1) per item) and gives Node at most `window` messages not yet written.
 * A message's send callback fires once Node has written it, which for a handle is right after the previous
 * handle's ack, so the next handle is always already queued inside Node when an ack arrives: the channel never
 * waits on us, and Node's queue never holds more than `window` items.
 */
import { Fifo } from '../collections/fifo.js';

/** Writes one message; `written` is called once the message is on the channel (or failed). */
export type ChannelWrite<M> = (msg: M, handle: object | undefined, written: (err?: Error | null) => void) => void;

interface Item<M> {
  msg: M;
  handle: object | undefined;
  done: ((err?: Error | null) => void) | undefined;
}

export class HandlePipeline<M> {
  #write: ChannelWrite<M>;
  #window: number;
  #queue = new Fifo<Item<M>>();
  #unwritten = 0;
  #pumping = false;

  /**
   * @param write the channel's send (for example `child.send(msg, handle, {}, cb)`).
   * @param window messages handed to Node and not yet written. 2 keeps the next handle ready inside Node at every ack.
   * @example
   * const out = new HandlePipeline<ToWorker>((m, h, cb) => child.send(m, h as never, {}, cb));
   * out.push({ t: 'commit' });
   */
  constructor(write: ChannelWrite<M>, window = 2) {
    this.#write = write;
    this.#window = Math.max(1, window);
  }

  /** Messages waiting in this outbox, not yet handed to Node. */
  get backlog(): number {
    return this.#queue.size;
  }

  /** Messages handed to Node and not yet written. */
  get unwritten(): number {
    return this.#unwritten;
  }

  /** Queue one message, in order after every earlier one. `done` runs once it is written (or failed). */
  push(msg: M, handle?: object, done?: (err?: Error | null) => void): void {
    this.#queue.push({ msg, handle, done });
    this.#pump();
  }

  /**
   * Drop the messages not yet handed to Node for which `pred` holds, and return them (an abort closes their handles
   * or resumes their connections). What Node already holds is sent regardless.
   */
  discard(pred: (msg: M) => boolean): Array<{ msg: M; handle: object | undefined }> {
    return this.#queue.filter((item) => !pred(item.msg)).map(({ msg, handle }) => ({ msg, handle }));
  }

  #pump(): void {
    // A write that completes synchronously (a dead channel) calls back into #pump: the loop below carries on instead
    // of recursing once per queued message.
    if (this.#pumping) return;
    this.#pumping = true;
    while (this.#unwritten < this.#window && this.#queue.size > 0) {
      const item = this.#queue.shift()!;
      this.#unwritten++;
      let settled = false;
      const written = (err?: Error | null) => {
        // Node calls back once; a write that throws synchronously below must not count twice.
        if (settled) return;
        settled = true;
        this.#unwritten--;
        item.done?.(err);
        this.#pump();
      };
      try {
        this.#write(item.msg, item.handle, written);
      } catch (err) {
        written(err as Error);
      }
    }
    this.#pumping = false;
  }
}
