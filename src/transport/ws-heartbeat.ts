/**
 * WebSocket pings with a pong deadline, for every socket of a listener on one timer: ping all, wait `pongTimeout`,
 * cut off those that did not answer (HOTLINE_E_PONG_TIMEOUT), wait out the rest of `pingInterval`, again. A peer
 * that vanished without a FIN (a dropped NAT entry, a pulled cable) would otherwise hold its socket and its buffers
 * for as long as the kernel's keepalive, hours by default (issue 9, item 5).
 */
import type { WebSocket } from 'ws';

/** One socket as the heartbeat sees it. */
export interface Pingable {
  readonly ws: WebSocket;
  /**
   * Not read from now: paused by inbound backpressure or an upgrade (ws' own pause), or held back for its address'
   * share of partial frames. It cannot read a pong, so none is demanded.
   */
  readonly paused: boolean;
  /** Set when pinged, cleared by its pong. */
  awaitingPong: boolean;
  /** It did not pong in time: cut it off. */
  unresponsive(): void;
}

export interface HeartbeatTiming {
  pingInterval: number;
  pongTimeout: number;
}

export class WsHeartbeat {
  #timing: HeartbeatTiming;
  #members = new Set<Pingable>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(timing: HeartbeatTiming) {
    this.#timing = timing;
  }

  get size(): number {
    return this.#members.size;
  }

  add(p: Pingable): void {
    if (this.#timing.pingInterval === 0 || this.#closed) return;
    this.#members.add(p);
    if (!this.#timer) this.#schedule(() => this.#ping(), this.#timing.pingInterval);
  }

  delete(p: Pingable): void {
    this.#members.delete(p);
    if (this.#members.size === 0) this.#stop();
  }

  /** Stop for good (the listener stopped). Idempotent. */
  close(): void {
    this.#closed = true;
    this.#members.clear();
    this.#stop();
  }

  #ping(): void {
    for (const p of this.#members) {
      if (p.ws.readyState !== p.ws.OPEN) continue;
      // A paused socket cannot read the pong, so none is demanded. It is
      // pinged all the same: that write is how a peer that left is noticed while its close waits, unread, behind
      // the bytes the kernel holds (its stack answers with an RST, and the next write fails).
      if (!p.paused) p.awaitingPong = true;
      p.ws.ping();
    }
    this.#schedule(() => this.#check(), this.#timing.pongTimeout);
  }

  #check(): void {
    for (const p of this.#members) {
      if (!p.awaitingPong) continue;
      p.awaitingPong = false;
      if (p.ws.readyState === p.ws.OPEN && !p.paused) p.unresponsive();
    }
    if (this.#members.size === 0) return this.#stop();
    this.#schedule(() => this.#ping(), Math.max(0, this.#timing.pingInterval - this.#timing.pongTimeout));
  }

  #schedule(fn: () => void, ms: number): void {
    this.#timer = setTimeout(fn, ms);
    this.#timer.unref();
  }

  #stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
