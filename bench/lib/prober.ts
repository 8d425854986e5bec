/**
 * One WebSocket client that keeps asking "which version are you?": it sends a probe every millisecond, reconnects
 * 2 ms after any close (a restarting server refuses for a while), and resolves a wait once a reply carries the
 * expected version tag (`tag|...`). P1 times a file save to that first reply.
 */
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';

export class Prober {
  #url: string;
  #ws: WebSocket | undefined;
  #timer: NodeJS.Timeout | undefined;
  #retry: NodeJS.Timeout | undefined;
  #waiter: { tag: string; resolve: (at: number) => void } | undefined;
  #stopped = false;
  /** Closes seen (a restart-based server closes every client on each update). */
  closes = 0;

  constructor(url: string) {
    this.#url = url;
    this.#connect();
  }

  /** Resolves with performance.now() at the first reply tagged `tag`; rejects after `timeoutMs`. */
  waitFor(tag: string, timeoutMs = 20_000): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        reject(new Error(`no reply tagged ${tag} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiter = { tag, resolve: (at) => (clearTimeout(timer), resolve(at)) };
    });
  }

  close(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    clearTimeout(this.#retry);
    this.#ws?.terminate();
  }

  #connect(): void {
    if (this.#stopped) return;
    const ws = new WebSocket(this.#url, { perMessageDeflate: false });
    this.#ws = ws;
    let opened = false;
    ws.on('open', () => {
      opened = true;
      ws.send('probe');
      this.#timer = setInterval(() => ws.send('probe'), 1);
    });
    ws.on('message', (data) => {
      const now = performance.now();
      const text = String(data);
      const tag = text.slice(0, text.indexOf('|'));
      const w = this.#waiter;
      if (w && tag === w.tag) {
        this.#waiter = undefined;
        w.resolve(now);
      }
    });
    ws.on('error', () => undefined);
    ws.on('close', () => {
      clearInterval(this.#timer);
      if (opened) this.closes++;
      if (!this.#stopped) this.#retry = setTimeout(() => this.#connect(), 2);
    });
  }
}
