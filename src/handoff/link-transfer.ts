/**
 * issue 15: checking a link that arrives at a process upgrade (protocol.ts LinkTransfer), every field, before any of
 * it reaches a HostLink. The bounds are the link's own: its options are read back through linkSpec (specOfKey), then
 * the queued sends must fit maxQueuedSends/maxQueuedBytes, each carried message maxPayload, and the head must be what
 * it claims to be, the partial frame of that framing (no complete frame in it). A transfer past any of them is
 * HOTLINE_E_HANDOFF_FRAME, as a malformed connection body is: the upgrade aborts and the old worker keeps serving.
 */
import { HotlineError, isHotlineError, messageOf } from '../errors.js';
import type { LinkCounters, LinkEvent } from '../links/link.js';
import { type LinkSpec, specOfKey } from '../links/link-options.js';
import type { MessageData } from '../plugin/contract.js';
import type { LinkTransfer } from './protocol.js';

/** Events one link may carry: its inbound queue pauses the socket at maxQueuedMessages; one read may add a burst. */
export const MAX_CARRIED_EVENTS = 100_000;
/** Bytes of messages one link may carry in its events. */
export const MAX_CARRIED_EVENT_BYTES = 64 * 1024 * 1024;
/** A ws Receiver holds at most a fragmented message (maxPayload) and a frame in progress (maxPayload + its header). */
const WS_HEAD_SLACK = 64;
const MAX_TEXT = 1024;
const COUNTERS: ReadonlyArray<keyof LinkCounters> = [
  'reconnects',
  'bytesIn',
  'bytesOut',
  'messagesIn',
  'messagesOut',
  'framingErrors',
  'dropped',
  'handlersAbandoned',
  'upgradesMoved',
  'upgradesReconnected',
];
const CODE = /^HOTLINE_E_[A-Z0-9_]{1,60}$/;

function malformed(name: unknown, why: string, cause?: unknown): HotlineError {
  return new HotlineError('HOTLINE_E_HANDOFF_FRAME', `link "${String(name).slice(0, 100)}": ${why}`, cause === undefined ? undefined : { cause });
}

const bytesOf = (m: MessageData) => (typeof m === 'string' ? Buffer.byteLength(m) : m.byteLength);
const isMessage = (m: unknown): m is MessageData => typeof m === 'string' || m instanceof Uint8Array;
const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
const isText = (s: unknown): s is string => typeof s === 'string' && s.length <= MAX_TEXT;

/** Check a decoded `link` transfer (transfer-codec.ts calls it). Throws HOTLINE_E_HANDOFF_FRAME naming the field. */
export function checkLinkTransfer(msg: Record<string, unknown>): asserts msg is Record<string, unknown> & LinkTransfer {
  const name = msg.name;
  let spec: LinkSpec;
  try {
    spec = specOfKey(name, msg.key);
  } catch (err) {
    throw malformed(name, isHotlineError(err) ? err.message : messageOf(err), err);
  }
  const wire = msg.wire;
  if (wire !== undefined && wire !== 'stream' && wire !== 'ws') throw malformed(name, 'wire must be "stream", "ws" or absent');
  // A TLS session cannot move (nodejs/node#4037): tls:// and wss:// links never travel with their socket.
  if (wire === 'stream' && spec.scheme !== 'tcp') throw malformed(name, `a ${spec.scheme}:// link cannot travel with a stream socket`);
  if (wire === 'ws' && spec.scheme !== 'ws') throw malformed(name, `a ${spec.scheme}:// link cannot travel with a WebSocket`);
  if (msg.reason !== undefined && !isText(msg.reason)) throw malformed(name, 'reason must be a short string');
  if (!(msg.head instanceof Uint8Array)) throw malformed(name, 'head must be bytes');
  checkHead(name, spec, wire, msg.head);
  if (!isText(msg.version)) throw malformed(name, 'version must be a short string');
  const c = msg.counters as Record<string, unknown> | null;
  if (c === null || typeof c !== 'object') throw malformed(name, 'counters must be an object');
  for (const k of COUNTERS) if (!isCount(c[k])) throw malformed(name, `counters.${k} must be a non-negative integer`);
  if (!isCount(msg.attempt) || msg.attempt > 1_000_000) throw malformed(name, 'attempt must be a non-negative integer');
  if (typeof msg.everOpened !== 'boolean' || typeof msg.open !== 'boolean') throw malformed(name, 'everOpened and open must be booleans');
  if (wire !== undefined && !msg.open) throw malformed(name, 'a link that was not open cannot travel with its socket');
  if (msg.open && !msg.everOpened) throw malformed(name, 'an open link must have opened');
  const sends = msg.sends;
  if (!Array.isArray(sends) || !sends.every(isMessage)) throw malformed(name, 'sends must be strings and byte arrays');
  if (sends.length > spec.maxQueuedSends) throw malformed(name, `${sends.length} queued sends, over maxQueuedSends (${spec.maxQueuedSends})`);
  const sendBytes = (sends as MessageData[]).reduce((n, m) => n + bytesOf(m), 0);
  if (sendBytes > spec.maxQueuedBytes) throw malformed(name, `${sendBytes} bytes of queued sends, over maxQueuedBytes (${spec.maxQueuedBytes})`);
  checkEvents(name, spec, msg.events);
}

/** The head is a partial frame of the link's framing, never a whole one: what a decoder holds between messages. */
function checkHead(name: unknown, spec: LinkSpec, wire: unknown, head: Uint8Array): void {
  if (wire === undefined) {
    if (head.byteLength > 0) throw malformed(name, 'a link without its socket carries no head');
    return;
  }
  if (wire === 'ws') {
    if (head.byteLength > 2 * spec.maxPayload + WS_HEAD_SLACK) throw malformed(name, `a head of ${head.byteLength} bytes is over what a Receiver holds`);
    return;
  }
  if (spec.framing === 'lines') {
    // The line decoder keeps at most maxPayload + 1 bytes (a "\r" before the "\n") and never a "\n".
    if (head.byteLength > spec.maxPayload + 1) throw malformed(name, `a partial line of ${head.byteLength} bytes is over maxPayload (${spec.maxPayload})`);
    if (head.includes(0x0a)) throw malformed(name, 'the head holds a whole line');
    return;
  }
  if (head.byteLength >= 4) {
    const declared = Buffer.from(head.buffer, head.byteOffset, head.byteLength).readUInt32BE(0);
    if (declared > spec.maxPayload) throw malformed(name, `the partial frame declares ${declared} bytes, over maxPayload (${spec.maxPayload})`);
    if (head.byteLength >= 4 + declared) throw malformed(name, 'the head holds a whole length frame');
  }
}

function checkEvents(name: unknown, spec: LinkSpec, events: unknown): asserts events is LinkEvent[] {
  if (!Array.isArray(events)) throw malformed(name, 'events must be an array');
  if (events.length > MAX_CARRIED_EVENTS) throw malformed(name, `${events.length} events, over ${MAX_CARRIED_EVENTS}`);
  let bytes = 0;
  for (const [i, e] of (events as unknown[]).entries()) {
    const ev = e as Record<string, unknown> | null;
    if (ev === null || typeof ev !== 'object') throw malformed(name, `event ${i} must be an object`);
    switch (ev.kind) {
      case 'open':
      case 'reconnect':
        break;
      case 'message': {
        if (!isMessage(ev.data)) throw malformed(name, `event ${i}: a message must be a string or bytes`);
        const n = bytesOf(ev.data);
        if (n > spec.maxPayload) throw malformed(name, `event ${i}: a message of ${n} bytes, over maxPayload (${spec.maxPayload})`);
        bytes += n;
        if (bytes > MAX_CARRIED_EVENT_BYTES) throw malformed(name, `its events carry over ${MAX_CARRIED_EVENT_BYTES} bytes`);
        break;
      }
      case 'close': {
        const info = ev.info as Record<string, unknown> | null;
        if (info === null || typeof info !== 'object' || !isText(info.reason) || typeof info.willReconnect !== 'boolean') {
          throw malformed(name, `event ${i}: a close must have a short reason and willReconnect`);
        }
        if (info.code !== undefined && (typeof info.code !== 'string' || !CODE.test(info.code))) throw malformed(name, `event ${i}: a close code must be a HOTLINE_E_ code`);
        break;
      }
      default:
        throw malformed(name, `event ${i} is of unknown kind`);
    }
  }
}

/** The events as a HostLink takes them: fresh objects of exactly the checked fields. */
export function carriedEvents(events: unknown[]): LinkEvent[] {
  return (events as LinkEvent[]).map((e): LinkEvent => {
    if (e.kind === 'message') return { kind: 'message', data: e.data };
    if (e.kind === 'close') return { kind: 'close', info: { reason: e.info.reason, ...(e.info.code !== undefined && { code: e.info.code }), willReconnect: e.info.willReconnect } };
    return { kind: e.kind };
  });
}

/** The counters as a HostLink takes them: exactly the known ones. */
export function carriedCounters(c: Record<string, number>): LinkCounters {
  const out = {} as LinkCounters;
  for (const k of COUNTERS) out[k] = c[k]!;
  return out;
}
