/**
 * The bytes every connection holds in a partial frame: a TCP line or length frame not yet complete, a WebSocket frame
 * not yet received whole, the fragments of an unfinished WebSocket message. Three bounds (issue 9, item 5: 1,000
 * sockets each holding a (1 MiB − 1) frame took 1.18 GB and kept it):
 *
 * - `frameTimeout`: a partial frame that gets no new bytes for that long is abandoned (HOTLINE_E_FRAME_TIMEOUT);
 * - `maxIncompleteBytes`: the total across all connections; the connection whose partial frame would take the total
 *   over it is abandoned (HOTLINE_E_INCOMPLETE_BUDGET);
 * - `maxIncompleteBytesPerIp` (off by default): one address' share. A read that takes the address past it holds that
 *   socket back (not read, nothing lost) until another of the address' partial frames is gone. Closing would not do:
 *   the client reconnects and sends its partial frame again. What the host pays for is the bytes it reads: each one
 *   read into a partial frame lives in a read buffer and a copy until the next full GC, and V8 starts one for every
 *   few MB of such external memory. In R2, 50 sockets resending 256 KiB each every frameTimeout made 9 full GCs in
 *   10 s (5–13 ms pauses each, the normal clients' p99 at 6×). With a 1 MiB share, and new sockets of an address past
 *   it held back before their first read, the same attack costs the normal clients nothing measurable.
 *
 * One sweep timer for all holders, running only while some partial frame exists: a connection at a message boundary
 * (the common case) costs one comparison per chunk read and no timer.
 *
 * A sweep closes at most ABANDON_PER_SWEEP holders and comes back SPREAD_MS later for the rest. Attackers that
 * stalled together time out together, and closing them in one tick let them all reconnect and resend their partial
 * frames in one burst, which stalled every other client's replies (R2: 50 fragment holders alone took the normal
 * clients' p99 to 4.1× the clean run). Spread over ticks, their reconnects are spread too.
 */
import { HotlineError } from '../errors.js';
import { ipKey } from './admission.js';

/** A connection's side of the budget. The two counters are maintained by IncompleteFrames, not by the holder. */
export interface IncompleteHolder {
  /** The peer's IP address: its partial frames share maxIncompleteBytesPerIp. */
  readonly remoteAddress: string;
  /** Bytes counted for this holder; 0 when it holds no partial frame. */
  incompleteBytes: number;
  /** When its partial frame last got new bytes (deps.now()). */
  incompleteSince: number;
  /** Close the connection and let its partial bytes go; the error says why. Called at most once per entry. */
  abandon(err: HotlineError): void;
  /** Its address is over its share: stop reading from the socket (the kernel's buffers push back on the client). */
  holdBack(): void;
  /**
   * Read again, unless something else holds the socket paused (a full inbound queue, an upgrade). Only after
   * holdBack, and never after the holder was forgotten.
   */
  release(): void;
}

export interface IncompleteLimits {
  frameTimeout: number;
  maxIncompleteBytes: number;
  /** Infinity: off. */
  maxIncompleteBytesPerIp: number;
}

/** One address's partial frames: their bytes, and its holders held back, longest first. */
interface Share {
  bytes: number;
  heldBack: Set<IncompleteHolder>;
  /** The next release of a held-back socket, while some wait. */
  drip: NodeJS.Timeout | undefined;
}

/** How often an address below its share releases another held-back socket: 50 a second at most. */
const RELEASE_EVERY_MS = 20;

export interface IncompleteDeps {
  now(): number;
}

const REAL_DEPS: IncompleteDeps = { now: Date.now };

/** Holders one sweep closes at most (see the file comment). */
export const ABANDON_PER_SWEEP = 8;
/** How soon a sweep that left stale holders runs again: 400 closes a second, 10,000 stalled sockets in 25 s. */
const SPREAD_MS = 20;

export class IncompleteFrames {
  #limits: IncompleteLimits;
  #deps: IncompleteDeps;
  #shares = new Map<string, Share>();
  #held = new Set<IncompleteHolder>();
  #total = 0;
  #timer: NodeJS.Timeout | undefined;
  #spread: NodeJS.Timeout | undefined;

  /** Sockets held back for their address' share since start. */
  heldBackTotal = 0;

  constructor(limits: IncompleteLimits, deps: IncompleteDeps = REAL_DEPS) {
    this.#limits = limits;
    this.#deps = deps;
  }


  /** Bytes in partial frames across all connections now. */
  get totalBytes(): number {
    return this.#total;
  }

  /** Connections holding a partial frame now. */
  get holders(): number {
    return this.#held.size;
  }

  /**
   * After a read: `holder` now has `bytes` in a partial frame (0: at a message boundary). `progressed` says whether
   * that partial frame got new bytes in this read. Returns false when the holder was abandoned for the budget.
   */
  update(holder: IncompleteHolder, bytes: number, progressed: boolean): boolean {
    const prev = holder.incompleteBytes;
    if (bytes === 0) {
      if (prev !== 0) this.forget(holder);
      return true;
    }
    if (bytes > prev && this.#total - prev + bytes > this.#limits.maxIncompleteBytes) {
      this.forget(holder);
      holder.abandon(
        new HotlineError(
          'HOTLINE_E_INCOMPLETE_BUDGET',
          `partial frames across all connections would hold more than maxIncompleteBytes (${this.#limits.maxIncompleteBytes}); closing the connection that grew`,
        ),
      );
      return false;
    }
    this.#total += bytes - prev;
    holder.incompleteBytes = bytes;
    if (progressed || prev === 0) holder.incompleteSince = this.#deps.now();
    if (prev === 0) {
      this.#held.add(holder);
      this.#arm();
    }
    if (this.#limits.maxIncompleteBytesPerIp !== Infinity) this.#charge(holder, bytes - prev);
    return true;
  }

  /** The holder's partial bytes are gone (closed, moved, or back at a boundary). Idempotent. */
  forget(holder: IncompleteHolder): void {
    const bytes = holder.incompleteBytes;
    const perIp = this.#limits.maxIncompleteBytesPerIp !== Infinity;
    if (bytes === 0) {
      // A socket held back since it opened holds no bytes, and still waits in its address' line.
      if (perIp) this.#uncharge(holder, 0);
      return;
    }
    this.#total -= bytes;
    holder.incompleteBytes = 0;
    this.#held.delete(holder);
    if (this.#held.size === 0) this.#disarm();
    if (perIp) this.#uncharge(holder, bytes);
  }

  /**
   * A socket was accepted. If its address is past its share already, it is held back before its first read: each
   * new socket's first read (up to 64 KiB) would otherwise be the way past the share, and an address that reconnects
   * at its handshake rate would be read at that rate, share or not. Sockets moved by an upgrade are not passed here.
   */
  opened(holder: IncompleteHolder): void {
    if (this.#limits.maxIncompleteBytesPerIp === Infinity) return;
    const share = this.#shares.get(ipKey(holder.remoteAddress));
    if (share && share.bytes >= this.#limits.maxIncompleteBytesPerIp) this.#holdBack(share, holder);
  }

  /** Addresses holding partial frames now (with maxIncompleteBytesPerIp set). */
  get addresses(): number {
    return this.#shares.size;
  }

  /** Sockets held back for their address' share now. */
  get heldBack(): number {
    let n = 0;
    for (const s of this.#shares.values()) n += s.heldBack.size;
    return n;
  }

  /**
   * The holder's partial frame grew by `delta` (or shrank: a frame completed inside a longer read). Past its
   * address' share, the socket is held back. The bytes already read stay counted: the share can be passed by one
   * read of each socket released, never by more.
   */
  #charge(holder: IncompleteHolder, delta: number): void {
    // Counted as admission counts it (IPv4-mapped IPv6 is its IPv4 address). An entry lives only while one of its
    // sockets holds a partial frame or waits, so there are never more entries than connections.
    const address = ipKey(holder.remoteAddress);
    let share = this.#shares.get(address);
    if (!share) this.#shares.set(address, (share = { bytes: 0, heldBack: new Set(), drip: undefined }));
    share.bytes += delta;
    if (delta > 0 && share.bytes > this.#limits.maxIncompleteBytesPerIp && !share.heldBack.has(holder)) this.#holdBack(share, holder);
  }

  #holdBack(share: Share, holder: IncompleteHolder): void {
    share.heldBack.add(holder);
    this.heldBackTotal++;
    holder.holdBack();
  }

  /** The holder's partial frame is gone, or it closed: its bytes leave its address' share, and the line moves. */
  #uncharge(holder: IncompleteHolder, bytes: number): void {
    const address = ipKey(holder.remoteAddress);
    const share = this.#shares.get(address);
    if (!share) return;
    share.bytes -= bytes;
    share.heldBack.delete(holder);
    this.#releaseNext(address, share);
  }

  /**
   * Below its share, the address' socket held back longest reads again, and the next one RELEASE_EVERY_MS later if
   * the address is still below it then. One at a time: a released socket's next read is not known yet, and releasing
   * every one at once would let them all read together, the burst the share is there to prevent.
   */
  #releaseNext(address: string, share: Share): void {
    clearTimeout(share.drip);
    share.drip = undefined;
    if (share.bytes < this.#limits.maxIncompleteBytesPerIp) {
      for (const next of share.heldBack) {
        share.heldBack.delete(next);
        // Held back by the host, not stalled by its client: its frame timeout starts again.
        next.incompleteSince = this.#deps.now();
        next.release();
        break;
      }
    }
    if (share.heldBack.size > 0) {
      share.drip = setTimeout(() => this.#releaseNext(address, share), RELEASE_EVERY_MS);
      share.drip.unref();
    } else if (share.bytes <= 0) {
      this.#shares.delete(address);
    }
  }

  /**
   * Abandon up to ABANDON_PER_SWEEP holders whose partial frame has had no new bytes for frameTimeout. Returns whether
   * stale holders are left for the next sweep. The timer calls it.
   */
  sweep(): boolean {
    const timeout = this.#limits.frameTimeout;
    const deadline = this.#deps.now() - timeout;
    let closed = 0;
    for (const h of this.#held) {
      if (h.incompleteSince > deadline) continue;
      if (closed === ABANDON_PER_SWEEP) return true;
      closed++;
      this.forget(h);
      h.abandon(new HotlineError('HOTLINE_E_FRAME_TIMEOUT', `a partial frame got no new bytes for frameTimeout (${timeout} ms); closing`));
    }
    return false;
  }

  /** Stop the sweep (host shutdown). Holders left are forgotten. */
  close(): void {
    for (const h of this.#held) h.incompleteBytes = 0;
    this.#held.clear();
    for (const share of this.#shares.values()) clearTimeout(share.drip);
    this.#shares.clear();
    this.#total = 0;
    this.#disarm();
  }

  #arm(): void {
    if (this.#timer) return;
    // A quarter of the timeout, within [10 ms, 1 s]: a stalled frame is closed between 1× and 1.25× frameTimeout.
    const period = Math.max(10, Math.min(1000, this.#limits.frameTimeout / 4));
    this.#timer = setInterval(this.#tick, period);
    this.#timer.unref();
  }

  #tick = (): void => {
    clearTimeout(this.#spread);
    this.#spread = undefined;
    if (!this.sweep() || this.#timer === undefined) return;
    this.#spread = setTimeout(this.#tick, SPREAD_MS);
    this.#spread.unref();
  };

  #disarm(): void {
    clearInterval(this.#timer);
    clearTimeout(this.#spread);
    this.#timer = undefined;
    this.#spread = undefined;
  }
}
