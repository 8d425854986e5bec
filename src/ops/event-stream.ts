/**
 * The operations event stream: swaps, their phases, probation failures, rollbacks and process upgrades, fanned out to
 * Server-Sent Events subscribers (`GET /api/events`, the dashboard, `hotline upgrade`). Bounded every way a client
 * can push it: at most MAX_SUBSCRIBERS at once (the next is refused with 503), and a subscriber that does not read
 * is cut off once MAX_BUFFERED_BYTES wait for it, rather than buffered without end.
 */
import type { ServerResponse } from 'node:http';

export type OpsEventType = 'phase' | 'swap' | 'swap-error' | 'probation-failed' | 'upgrade-progress' | 'upgrade' | 'worker-restart';

export interface OpsEvent {
  type: OpsEventType;
  /** Milliseconds since the epoch. */
  at: number;
  data: unknown;
}

export const MAX_SUBSCRIBERS = 16;
export const MAX_BUFFERED_BYTES = 1024 * 1024;
/** A comment line this often keeps proxies from closing an idle stream. */
export const KEEPALIVE_MS = 15_000;

export class EventStream {
  #subscribers = new Set<ServerResponse>();
  #seq = 0;
  #keepalive: NodeJS.Timeout | undefined;
  #listeners = new Set<(e: OpsEvent) => void>();

  get subscribers(): number {
    return this.#subscribers.size;
  }

  /** Publish to every subscriber. Never throws: an event is best effort, the operation it reports goes on. */
  publish(type: OpsEventType, data: unknown): void {
    const event: OpsEvent = { type, at: Date.now(), data };
    for (const l of this.#listeners) l(event);
    if (this.#subscribers.size === 0) return;
    let frame: string;
    try {
      frame = `id: ${++this.#seq}\nevent: ${type}\ndata: ${JSON.stringify(event)}\n\n`;
    } catch {
      return;
    }
    for (const res of this.#subscribers) this.#write(res, frame);
  }

  /** In-process listeners (the supervisor forwards a worker's events through here). Returns the unsubscribe. */
  listen(fn: (e: OpsEvent) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Take over `res` as a subscriber; false (nothing written) when MAX_SUBSCRIBERS are already there. */
  subscribe(res: ServerResponse): boolean {
    if (this.#subscribers.size >= MAX_SUBSCRIBERS) return false;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write(': hotline events\n\n');
    this.#subscribers.add(res);
    res.on('close', () => {
      this.#subscribers.delete(res);
      if (this.#subscribers.size === 0) this.#stopKeepalive();
    });
    if (!this.#keepalive) {
      this.#keepalive = setInterval(() => {
        for (const r of this.#subscribers) this.#write(r, ': keepalive\n\n');
      }, KEEPALIVE_MS);
      this.#keepalive.unref();
    }
    return true;
  }

  /** End every stream. Idempotent. */
  close(): void {
    this.#stopKeepalive();
    for (const res of this.#subscribers) res.end();
    this.#subscribers.clear();
    this.#listeners.clear();
  }

  #write(res: ServerResponse, frame: string): void {
    if (res.writableLength > MAX_BUFFERED_BYTES) {
      this.#subscribers.delete(res);
      res.destroy();
      return;
    }
    res.write(frame);
  }

  #stopKeepalive(): void {
    clearInterval(this.#keepalive);
    this.#keepalive = undefined;
  }
}
