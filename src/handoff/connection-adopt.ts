/**
 * The new worker's side of an upgrade: rebuild each moved connection on its socket, paused, with its carried state
 * and queued messages; then take the global state through the plugin's `migrate`; then, at commit, listen and
 * start reading and dispatching. Nothing is read from a moved socket before commit, so an abort (this worker
 * killed) loses no byte: the old worker still holds every socket and everything it had read.
 */
import net from 'node:net';
import { isConnectionId } from '../connection/conn-id.js';
import { Connection } from '../connection/connection.js';
import type { SuspendHold } from '../connection/dispatcher.js';
import { HotlineError } from '../errors.js';
import type { HostHandoffPort } from '../host/host.js';
import type { OperationHold } from '../lock/operation-lock.js';
import { TcpTransport } from '../transport/tcp-transport.js';
import { WsTransport } from '../transport/ws-transport.js';
import { type LinkClaimant, linksOf } from '../links/link-table.js';
import { adoptLink } from './link-adopt.js';
import type { ConnTransfer, LinkTransfer, StateTransfer } from './protocol.js';
import { feedReceiver, rebuildWs } from './ws-frames.js';

export class ConnectionAdopter {
  #port: HostHandoffPort;
  #sockets: net.Socket[] = [];
  #adopted: Connection[] = [];
  /** Held until commit: no swap (a watched save in this worker) runs while connections arrive. */
  #hold: OperationHold;
  #suspension: SuspendHold;

  constructor(port: HostHandoffPort) {
    this.#port = port;
    // Taken at once: the lane delivers the first connection right after this. A swap running now refuses it.
    this.#hold = port.lock.tryAcquire('adopt');
    // Adopted connections queue their events until commit.
    this.#suspension = port.dispatcher.suspend('adopt');
  }

  get adopted(): number {
    return this.#adopted.length;
  }

  adopt(msg: ConnTransfer, handle: unknown): void {
    if (!handle) throw new HotlineError('HOTLINE_E_UPGRADE_REFUSED', 'a connection arrived without its socket');
    const id = adoptedId(msg.id, this.#port.dispatcher);
    // pauseOnCreate: the socket must not read before commit (see the file comment). noDelay for a WebSocket: ws sets
    // TCP_NODELAY on every socket it takes, and the old worker's ws already did on this very socket (the descriptor
    // is another reference to it), so this spares ws' setNoDelay() its system call.
    const socket = new net.Socket({ handle, readable: true, writable: true, pauseOnCreate: true, noDelay: msg.kind === 'ws' } as net.SocketConstructorOpts);
    this.#sockets.push(socket);
    const head = Buffer.from(msg.head.buffer, msg.head.byteOffset, msg.head.byteLength);
    const d = this.#port.dispatcher;
    const makeConn = (link: ConstructorParameters<typeof Connection>[0]) => {
      const conn = new Connection(link, d, msg.opened ? { id, resume: { state: msg.state } } : { id });
      // Checked against the same bounds when decoded (transfer-codec.ts): a join here cannot throw for a valid transfer.
      for (const room of msg.rooms ?? []) conn.join(room);
      for (const m of msg.messages) conn.receive(m);
      return conn;
    };
    const transports = this.#port.transports;
    let conn: Connection;
    if (msg.kind === 'ws') {
      const t = transports.find((x): x is WsTransport => x instanceof WsTransport);
      if (!t) throw new HotlineError('HOTLINE_E_UPGRADE_REFUSED', 'a WebSocket arrived but this worker has no WebSocket listener');
      // The head is parsed here, not unshifted into the socket: an unshift makes the stream start reading from
      // the kernel (maybeReadMore), and nothing may be read before commit.
      const ws = rebuildWs(socket, Buffer.alloc(0), msg.protocol, t.wsOptions);
      conn = t.adopt(ws, msg.remoteAddress, makeConn);
      if (head.length > 0) feedReceiver(ws, head);
    } else {
      const t = transports.find((x): x is TcpTransport => x instanceof TcpTransport && x.framing === (msg.framing ?? 'lines'));
      if (!t) throw new HotlineError('HOTLINE_E_UPGRADE_REFUSED', `a TCP connection (${msg.framing}) arrived but this worker has no such listener`);
      conn = t.adopt(socket, head, makeConn);
    }
    this.#adopted.push(conn);
  }

  /** issue 15: one outbound link (link-adopt.ts); the plugin claims it by name and options, or it closes at commit. */
  adoptLink(msg: LinkTransfer, handle: unknown): void {
    adoptLink(linksOf(this.#port.dispatcher), msg, handle);
  }

  /** Take the old worker's global state: `migrate` runs as for a swap, then `migrateConnection` per connection. */
  async importState(msg: StateTransfer): Promise<void> {
    const v = this.#port.current();
    if (!v) throw new HotlineError('HOTLINE_E_UPGRADE_REFUSED', 'this worker has no plugin version loaded');
    if (v.name !== msg.plugin) {
      throw new HotlineError('HOTLINE_E_UPGRADE_REFUSED', `the state is of plugin "${msg.plugin}", this worker runs "${v.name}"`);
    }
    const totals = msg.totals;
    if (totals && Number.isSafeInteger(totals.in) && Number.isSafeInteger(totals.out) && totals.in >= 0 && totals.out >= 0) {
      const d = this.#port.dispatcher;
      d.messagesIn += totals.in;
      d.messagesOut += totals.out;
      // Absent from an older build's transfer.
      if (Number.isSafeInteger(totals.dropped) && totals.dropped! >= 0) d.messagesDropped += totals.dropped!;
    }
    // The same migration as a swap's (swap/migrate-state.ts), with the same hookTimeout; committed only if it all
    // succeeds, so a refusal leaves this worker's state as init() made it (the upgrade aborts anyway).
    const { connStates } = await v.migrate({ version: msg.version, state: msg.state }, this.#adopted, this.#port.hookTimeout);
    // issue 15: the adopted links this version claimed (in init or migrate) take their state through migrateLink.
    linksOf(this.#port.dispatcher).migrateAdopted(v as unknown as LinkClaimant, { version: msg.version, state: msg.state });
    for (const [conn, cs] of connStates) conn.state = cs;
  }

  /** Listen, read, dispatch. */
  async commit(): Promise<void> {
    await this.#port.startListening();
    for (const s of this.#sockets) s.resume();
    this.#sockets = [];
    // issue 15: links adopted and not claimed close; the others read, or connect (before dispatch resumes).
    linksOf(this.#port.dispatcher).commit();
    this.#suspension.release();
    this.#hold.release();
  }
}

/**
 * The id a moved connection keeps. Checked before anything is built: an id that is malformed or already taken here
 * would break the guarantee plugins key their state by, so the connection is refused and the upgrade aborts.
 * An older build sends none: the connection gets a new one, as every upgrade did before ids travelled.
 */
function adoptedId(id: unknown, d: HostHandoffPort['dispatcher']): string | undefined {
  if (id === undefined) return undefined;
  if (!isConnectionId(id)) throw new HotlineError('HOTLINE_E_UPGRADE_REFUSED', 'a connection arrived with a malformed id');
  if (d.connections.has(id)) throw new HotlineError('HOTLINE_E_UPGRADE_REFUSED', `a connection arrived with id ${id}, already taken in this worker`);
  return id;
}
