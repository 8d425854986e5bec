/**
 * How transfers travel through a handle lane (handle-lane.ts). A connection's envelope (kind, framing, addresses,
 * the unconsumed bytes) has a fixed shape, so it can be written field by field; only what the plugin owns
 * (`conn.state`, the queued messages) then goes through v8's serializer, once per connection as before, so a state
 * keeps its structured-clone semantics and no two connections share an object. Serialising the whole transfer with
 * v8 cost ~9 µs per connection in the old worker and ~4 µs in the new one, where it is on the handoff's critical path.
 *
 * Old and new worker may be different builds (that is what an upgrade is for), so the compact form is used only once
 * the receiver has said it reads it (a `codec` message back through the lane, which older builds never send nor
 * read); until then, and for everything but connections, a body is v8's serialisation as it always was. A reader
 * tells the two apart by the first byte: v8's output always starts with its version tag, 0xFF.
 *
 * Compact connection body: tag 1, kind u8 (0 ws, 1 tcp), framing u8 (0 none, 1 lines, 2 length), opened u8, plugin
 * data u8 (0: state undefined and no queued message; 1: v8 of [state, messages] at the end); then remoteAddress,
 * protocol and head, each a u32 LE length and its bytes (strings in UTF-8); then the plugin data.
 *
 * With the connection's id (issue 10): tag 2, the same five bytes, then the id as a u8 length and its ASCII bytes,
 * then the rest as for tag 1. A receiver that reads tag 2 says so with `ids: 1` in its hello; an older sender ignores
 * the field and keeps writing tag 1, an older receiver never says it and keeps receiving tag 1, so every pair of
 * builds still agrees (the id is then lost, as it was before ids travelled).
 *
 * With the connection's rooms (issue 13): tag 3, as tag 2, then after the id a u8 count of rooms and each room as a
 * u8 length and its UTF-8 bytes (a room name is at most 255 bytes, src/rooms/room-name.ts). Negotiated as the id was:
 * `rooms: 1` in the hello. A receiver checks the count and every name against the bounds a join enforces, so a
 * transfer cannot put a connection in more rooms, or rooms of longer names, than the plugin API could.
 *
 * Outbound links (issue 15) travel as `link` transfers, v8's serialisation, only to a receiver that said `links: 1`
 * in its hello: an older one would refuse the unknown transfer and abort the upgrade, so to it links are not sent
 * (its plugin opens them again). Each is checked field by field against its own options' bounds (link-transfer.ts).
 */
import v8 from 'node:v8';
import { HotlineError, isHotlineError, messageOf } from '../errors.js';
import type { MessageData } from '../plugin/contract.js';
import type { FramingKind } from '../framing/framing.js';
import { MAX_ROOMS_PER_CONNECTION, roomNameProblem } from '../rooms/room-name.js';
import { type LaneCodec, V8_CODEC } from './handle-lane.js';
import { checkLinkTransfer } from './link-transfer.js';
import type { ConnTransfer, LinkTransfer, StateTransfer } from './protocol.js';

/** The receiver's word that it reads compact connection bodies. */
export interface LaneHello {
  t: 'codec';
  compact: 1;
  /** Reads tag 2 (a connection with its id). Absent from older builds. */
  ids?: 1;
  /** Reads tag 3 (a connection with its id and rooms). Absent from older builds. */
  rooms?: 1;
  /** Reads `link` transfers (issue 15). Absent from older builds. */
  links?: 1;
}

/** What a receiver of this build says through the lane. */
export const LANE_HELLO: LaneHello = { t: 'codec', compact: 1, ids: 1, rooms: 1, links: 1 };

export type LaneMessage = ConnTransfer | LinkTransfer | StateTransfer | LaneHello;

const TAG_CONN = 1;
const TAG_CONN_ID = 2;
const TAG_CONN_ROOMS = 3;
/** Connection ids are short (conn-id.ts); the u8 length bounds what a reader takes. */
const MAX_ID_BYTES = 255;
const FRAMINGS: ReadonlyArray<FramingKind | undefined> = [undefined, 'lines', 'length'];
const EMPTY = new Uint8Array(0);

export class TransferCodec implements LaneCodec<LaneMessage> {
  /** Set once the other end said it reads compact connection bodies. */
  compact = false;
  /** Set once the other end said it reads connection ids (tag 2). */
  ids = false;
  /** Set once the other end said it reads connection rooms (tag 3). */
  rooms = false;
  /** Set once the other end said it reads `link` transfers (issue 15). */
  links = false;
  /** Set once the other end's hello arrived (whatever it said). */
  heardHello = false;

  /** The other end's hello: what it reads. */
  heard(hello: LaneHello): void {
    this.compact = true;
    this.ids = hello.ids === 1;
    this.rooms = hello.rooms === 1;
    this.links = hello.links === 1;
    this.heardHello = true;
  }

  /** Throws at once when the plugin's data cannot be cloned, as v8.serialize does. */
  encode(msg: LaneMessage, reserve: number): Buffer {
    if (!this.compact || msg.t !== 'conn') return V8_CODEC.encode(msg, reserve);
    const framing = FRAMINGS.indexOf(msg.framing);
    if (framing < 0) return V8_CODEC.encode(msg, reserve);
    const data = msg.state !== undefined || msg.messages.length > 0 ? v8.serialize([msg.state, msg.messages]) : undefined;
    const addressBytes = Buffer.byteLength(msg.remoteAddress);
    const protocolBytes = Buffer.byteLength(msg.protocol);
    const id = this.ids ? msg.id : undefined;
    const idBytes = id === undefined ? 0 : id.length;
    if (idBytes > MAX_ID_BYTES) return V8_CODEC.encode(msg, reserve);
    const idField = id === undefined ? 0 : 1 + idBytes;
    const rooms = this.rooms && msg.rooms !== undefined && msg.rooms.length > 0 ? msg.rooms : undefined;
    // Rooms ride on tag 3, which has an id; a receiver that reads rooms takes them from v8's form too.
    if (rooms && id === undefined) return V8_CODEC.encode(msg, reserve);
    let roomsField = 0;
    if (rooms) {
      roomsField = 1;
      for (const r of rooms) roomsField += 1 + Buffer.byteLength(r);
    }
    const out = Buffer.allocUnsafe(reserve + 17 + idField + roomsField + addressBytes + protocolBytes + msg.head.byteLength + (data?.length ?? 0));
    let off = reserve;
    out[off++] = rooms ? TAG_CONN_ROOMS : id === undefined ? TAG_CONN : TAG_CONN_ID;
    out[off++] = msg.kind === 'ws' ? 0 : 1;
    out[off++] = framing;
    out[off++] = msg.opened ? 1 : 0;
    out[off++] = data ? 1 : 0;
    if (id !== undefined) {
      out[off++] = idBytes;
      off += out.write(id, off, 'latin1');
    }
    if (rooms) {
      out[off++] = rooms.length;
      for (const r of rooms) {
        const n = out.write(r, off + 1, 'utf8');
        out[off] = n;
        off += 1 + n;
      }
    }
    off = out.writeUInt32LE(addressBytes, off);
    off += out.write(msg.remoteAddress, off, 'utf8');
    off = out.writeUInt32LE(protocolBytes, off);
    off += out.write(msg.protocol, off, 'utf8');
    off = out.writeUInt32LE(msg.head.byteLength, off);
    out.set(msg.head, off);
    off += msg.head.byteLength;
    if (data) data.copy(out, off);
    return out;
  }

  /**
   * Either form. Copies what it keeps: the body's memory belongs to the read. Throws HOTLINE_E_HANDOFF_FRAME, and
   * nothing else, for a body that is not a well-formed transfer: a length past the end, bytes left over, an unknown
   * tag or kind, v8 bytes that do not deserialise, or a message of the wrong shape. The lane reports it and the
   * upgrade aborts (handle-lane.ts), instead of an exception escaping the read callback.
   */
  decode(body: Buffer): LaneMessage {
    let msg: LaneMessage;
    try {
      // v8's output starts with its version tag (0xFF), never with TAG_CONN or TAG_CONN_ID.
      msg = body[0] === TAG_CONN || body[0] === TAG_CONN_ID || body[0] === TAG_CONN_ROOMS ? decodeCompact(body) : (v8.deserialize(body) as LaneMessage);
    } catch (err) {
      if (isHotlineError(err, 'HOTLINE_E_HANDOFF_FRAME')) throw err;
      throw malformed(`a transfer body does not decode: ${messageOf(err)}`, err);
    }
    checkShape(msg);
    return msg;
  }
}

function malformed(message: string, cause?: unknown): HotlineError {
  return new HotlineError('HOTLINE_E_HANDOFF_FRAME', message, cause === undefined ? undefined : { cause });
}

/** The compact connection body, every length checked against what is left of the body. */
function decodeCompact(body: Buffer): ConnTransfer {
  if (body.length < 5) throw malformed(`a compact connection body of ${body.length} bytes is shorter than its 5-byte header`);
  if (body[1]! > 1) throw malformed(`unknown connection kind ${body[1]}`);
  if (body[2]! >= FRAMINGS.length) throw malformed(`unknown framing ${body[2]}`);
  if (body[3]! > 1 || body[4]! > 1) throw malformed('the opened and plugin-data flags must be 0 or 1');
  const kind = body[1] === 0 ? 'ws' : 'tcp';
  const framing = FRAMINGS[body[2]!];
  const opened = body[3] === 1;
  const hasData = body[4] === 1;
  let off = 5;
  let id: string | undefined;
  if (body[0] === TAG_CONN_ID || body[0] === TAG_CONN_ROOMS) {
    if (body.length - off < 1) throw malformed('the body ends inside the length of its connection id');
    const idBytes = body[off++]!;
    if (body.length - off < idBytes) throw malformed(`the connection id (${idBytes} bytes) runs past the end of the body`);
    id = body.toString('latin1', off, off + idBytes);
    off += idBytes;
  }
  let rooms: string[] | undefined;
  if (body[0] === TAG_CONN_ROOMS) {
    if (body.length - off < 1) throw malformed('the body ends inside the count of its rooms');
    const count = body[off++]!;
    rooms = [];
    for (let i = 0; i < count; i++) {
      if (body.length - off < 1) throw malformed(`the body ends inside the length of room ${i}`);
      const n = body[off++]!;
      if (body.length - off < n) throw malformed(`room ${i} (${n} bytes) runs past the end of the body`);
      // Kept only if it reads back as the same bytes: invalid UTF-8 would become U+FFFD, another room.
      const room = body.toString('utf8', off, off + n);
      if (Buffer.byteLength(room) !== n) throw malformed(`room ${i} is not valid UTF-8`);
      rooms.push(room);
      off += n;
    }
  }
  const field = (what: string): [number, number] => {
    if (body.length - off < 4) throw malformed(`the body ends inside the length of its ${what}`);
    const n = body.readUInt32LE(off);
    off += 4;
    if (body.length - off < n) throw malformed(`the ${what} (${n} bytes) runs past the end of the body`);
    const at = off;
    off += n;
    return [at, at + n];
  };
  const [a0, a1] = field('remote address');
  const remoteAddress = body.toString('utf8', a0, a1);
  const [p0, p1] = field('protocol');
  const protocol = body.toString('utf8', p0, p1);
  const [h0, h1] = field('head');
  const head = h1 > h0 ? Buffer.from(body.subarray(h0, h1)) : EMPTY;
  let state: unknown;
  let messages: MessageData[] = [];
  if (hasData) {
    const data: unknown = v8.deserialize(body.subarray(off));
    if (!Array.isArray(data) || data.length !== 2) throw malformed('the plugin data of a connection must be [state, messages]');
    [state, messages] = data as [unknown, MessageData[]];
  } else if (off !== body.length) {
    throw malformed(`${body.length - off} bytes follow a connection body that has no plugin data`);
  }
  const conn: ConnTransfer = { t: 'conn', kind, framing, remoteAddress, protocol, head, opened, state, messages };
  if (id !== undefined) conn.id = id;
  if (rooms !== undefined) conn.rooms = rooms;
  return conn;
}

/** The bounds a join enforces (src/rooms/room-name.ts), on membership that arrives from another process. */
function checkRooms(rooms: unknown): void {
  if (!Array.isArray(rooms)) throw malformed('conn.rooms must be an array');
  if (rooms.length > MAX_ROOMS_PER_CONNECTION) throw malformed(`conn.rooms has ${rooms.length} rooms, over the ${MAX_ROOMS_PER_CONNECTION} one connection may be in`);
  for (const r of rooms) {
    const problem = roomNameProblem(r);
    if (problem) throw malformed(`conn.rooms: ${problem}`);
  }
}

const isMessage = (m: unknown): m is MessageData => typeof m === 'string' || m instanceof Uint8Array;

/** The fields every reader of a transfer relies on. Extra fields pass (a newer build may add some). */
function checkShape(msg: unknown): asserts msg is LaneMessage {
  if (msg === null || typeof msg !== 'object') throw malformed('a transfer must be an object');
  const m = msg as Record<string, unknown>;
  switch (m.t) {
    case 'conn':
      if (m.kind !== 'ws' && m.kind !== 'tcp') throw malformed('conn.kind must be ws or tcp');
      if (m.framing !== undefined && !FRAMINGS.includes(m.framing as FramingKind)) throw malformed('conn.framing is unknown');
      if (typeof m.remoteAddress !== 'string' || typeof m.protocol !== 'string') throw malformed('conn.remoteAddress and conn.protocol must be strings');
      if (!(m.head instanceof Uint8Array)) throw malformed('conn.head must be bytes');
      if (typeof m.opened !== 'boolean') throw malformed('conn.opened must be a boolean');
      if (m.id !== undefined && typeof m.id !== 'string') throw malformed('conn.id must be a string');
      if (!Array.isArray(m.messages) || !m.messages.every(isMessage)) throw malformed('conn.messages must be strings and byte arrays');
      if (m.rooms !== undefined) checkRooms(m.rooms);
      return;
    case 'link':
      checkLinkTransfer(m);
      return;
    case 'state':
      if (typeof m.plugin !== 'string' || typeof m.version !== 'string') throw malformed('state.plugin and state.version must be strings');
      return;
    case 'codec':
      if (m.compact !== 1) throw malformed('codec.compact must be 1');
      return;
    default:
      throw malformed(`unknown transfer ${typeof m.t === 'string' ? JSON.stringify(m.t.slice(0, 32)) : typeof m.t}`);
  }
}
