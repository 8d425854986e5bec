/**
 * issue 15: the old worker's side of an upgrade for outbound links (src/links/), the counterpart of
 * connection-export.ts. With dispatch suspended and idle, each link is frozen (no reconnect, no connect attempt) and
 * sent to the new worker through the handle lane:
 * - a tcp:// or ws:// link that is open travels with its TCP socket, the bytes read of a frame not yet complete (the
 *   framing's decoder, or the ws Receiver's parse state as wire bytes, ws-frames.ts), its queued sends, its events not
 *   yet dispatched, its counters and link.state: the upstream sees no reconnect;
 * - a tls:// or wss:// link cannot (a TLS session lives in this process's OpenSSL, nodejs/node#4037), nor one that is
 *   connecting or backing off, nor one whose socket did not quiesce in time: it travels as its state, and the new
 *   worker reconnects it at the commit (counted: upgradesReconnected, reconnects).
 * Until release this worker keeps its copy of every socket, paused: an abort thaws every link and nothing was lost.
 */
import type net from 'node:net';
import { HotlineError, messageOf } from '../errors.js';
import { rawHandle, startReading, stopReading } from '../internals/node-internals.js';
import type { HostLink } from '../links/link.js';
import type { LinkSocketSource } from '../links/link-socket.js';
import type { LinkTable } from '../links/link-table.js';
import type { LinkTransfer } from './protocol.js';
import { captureWs } from './ws-frames.js';

/** Capture rounds a link gets (writes to flush, buffered bytes to parse) before it travels as its state only. */
const MAX_ROUNDS = 100;
const ROUND_WAIT_MS = 5;

type Capture = { wire: 'stream' | 'ws'; socket: net.Socket; head: Buffer } | { retry: string } | { stateOnly: string };

/** One link sent, kept frozen here until release or abort. */
interface Sent {
  link: HostLink;
  /** Its socket moved (let go without a FIN at release), else it is closed at release. */
  moved: boolean;
  source: LinkSocketSource | undefined;
}

export class LinkExporter {
  #table: LinkTable;
  #sent: Sent[] = [];

  constructor(table: LinkTable) {
    this.#table = table;
  }

  /**
   * Send every link that is not closed. `send` throws when the transfer cannot be encoded (a link.state that cannot
   * be cloned): the export fails with HOTLINE_E_UPGRADE_REFUSED and the upgrade aborts, as for the global state.
   */
  async export(send: (msg: LinkTransfer, handle?: object) => void): Promise<{ moved: number; reconnecting: number }> {
    let pending = this.#table.links().filter((l) => l.phase !== 'closed');
    let moved = 0;
    for (let round = 0; pending.length > 0; round++) {
      const retry: HostLink[] = [];
      for (const link of pending) {
        const c = capture(link, round >= MAX_ROUNDS);
        if ('retry' in c) {
          retry.push(link);
          continue;
        }
        const source = 'wire' in c ? link.handoffSource() : undefined;
        const snap = link.freeze();
        const transfer: LinkTransfer = {
          t: 'link',
          name: link.name,
          key: link.spec.key,
          ...('wire' in c ? { wire: c.wire } : { reason: c.stateOnly }),
          head: 'wire' in c ? c.head : new Uint8Array(0),
          state: snap.state,
          version: snap.version,
          counters: { ...snap.counters },
          attempt: snap.attempt,
          everOpened: snap.everOpened,
          open: snap.open,
          sends: snap.sends,
          events: snap.events,
        };
        // Recorded before the send: a send that throws still leaves the link frozen, and resume() thaws it.
        this.#sent.push({ link, moved: 'wire' in c, source });
        const handle = 'wire' in c ? rawHandle(c.socket) : undefined;
        try {
          send(transfer, handle ?? undefined);
        } catch (err) {
          throw new HotlineError('HOTLINE_E_UPGRADE_REFUSED', `link "${link.name}" cannot be sent to the new worker: ${messageOf(err)}`, { cause: err });
        }
        if ('wire' in c) moved++;
      }
      pending = retry;
      if (pending.length > 0) await new Promise((resolve) => setTimeout(resolve, ROUND_WAIT_MS));
    }
    return { moved, reconnecting: this.#sent.length - moved };
  }

  /** The upgrade committed: the new worker owns the links now. No event reaches this worker's plugin. */
  release(): void {
    for (const { link, moved } of this.#sent) {
      link.letGo(moved);
      this.#table.forget(link);
    }
    this.#sent = [];
  }

  /** The upgrade aborted: read again and carry on, reconnect timers included. */
  resume(): void {
    for (const { link, source } of this.#sent) {
      // The link resumes its socket unless its own inbound bound holds it paused; the handle is restarted below it.
      link.thaw();
      if (source) startReading(source.socket);
    }
    this.#sent = [];
  }
}

/**
 * Pause a link's socket and take what the new worker needs of it; `retry` when it is not quiescent yet (bytes in the
 * stream's buffer to parse first, writes still queued). After `lastRound`, a link that is still not quiescent travels
 * as its state only (the new worker reconnects it) rather than holding the upgrade.
 */
function capture(link: HostLink, lastRound: boolean): Capture {
  const source = link.handoffSource();
  if (!source) {
    const tls = link.spec.scheme === 'tls' || link.spec.scheme === 'wss';
    return { stateOnly: link.phase !== 'open' ? `it was ${link.phase}` : tls ? 'TLS' : 'not movable' };
  }
  const raw = source.socket;
  if (source.kind === 'ws') source.ws.pause();
  else raw.pause();
  stopReading(raw);
  let c: Capture;
  if (source.kind === 'ws') {
    const w = captureWs(source.ws);
    c = 'socket' in w ? { wire: 'ws', socket: w.socket, head: w.head } : 'retry' in w ? { retry: w.retry } : { stateOnly: w.never };
  } else if (raw.readableLength > 0) {
    c = { retry: 'socket buffer' };
  } else if (raw.writableLength > 0) {
    c = { retry: 'writes pending' };
  } else {
    c = { wire: 'stream', socket: raw, head: source.unconsumed() };
  }
  if ('wire' in c && !rawHandle(c.socket)) c = { stateOnly: 'no handle' };
  if ('retry' in c) {
    if (lastRound) return { stateOnly: `not quiescent in time (${c.retry})` };
    // Bytes buffered in the stream are parsed into events (which wait: dispatch is suspended) before the next round.
    if (c.retry !== 'writes pending') resumeSource(source);
  }
  return c;
}

function resumeSource(source: LinkSocketSource | undefined): void {
  if (!source) return;
  if (source.kind === 'ws') source.ws.resume();
  else source.socket.resume();
  startReading(source.socket);
}
