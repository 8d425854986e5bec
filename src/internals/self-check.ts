/**
 * The startup self-check of the internals hotline relies on (STYLE.md 13): on a Node major or a ws version it does
 * not know, or when a private field it reads is missing from a real object, starting fails at once with
 * HOTLINE_E_INTERNALS naming what is wrong, before anything binds or listens. Without it the first sign would be a
 * process upgrade that drops every connection, or a hostile-input guard that silently counts 0 bytes.
 *
 * It builds the objects it inspects (a ws Receiver, a server-side WebSocket without a socket) and reads prototypes
 * (net.Socket's, the bindings'): no descriptor, no timer, no listener. It runs once per process
 * (memoised, later calls ~3 µs). Measured on the shared 2-core test machine under other test load: the first call
 * in a process that loaded the host takes 1.5-2 ms, most of it reading ws' package.json and building the first
 * Receiver; a warm fresh probe ~0.3 ms (test/internals/self-check.test.ts prints it).
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import * as wsModule from 'ws';
import { WebSocket } from 'ws';
import { HotlineError } from '../errors.js';
import { pipeWrap, streamWrap, tcpWrap } from './node-internals.js';
import { RECEIVER_FIELDS, SENDER_FIELDS, WEBSOCKET_FIELDS } from './ws-internals.js';

/** The ws release whose private fields ws-internals.ts reads; package.json pins it exactly. */
export const KNOWN_WS_VERSION = '8.18.3';

/**
 * The Node majors whose internals node-internals.ts reads as it does. The tests run on 20; the fields and bindings
 * used have the same shape from 20 through 24 (lib/net.js `_handle` accessor, `_createServerHandle`, pipe_wrap and
 * stream_wrap on process.binding's allow-list). A new major is added here after test/handoff/*.test.ts and
 * test/hostile/*.test.ts pass on it.
 */
export const KNOWN_NODE_MAJORS: readonly number[] = [20, 21, 22, 23, 24];

/** What the check inspects: the real process and modules by default; a test passes fakes. */
export interface InternalsProbe {
  nodeVersion: string;
  wsVersion(): string;
  /** A fresh ws Receiver. */
  receiver(): object;
  /** A fresh server-side WebSocket with no socket (what rebuildWs constructs). */
  webSocket(): object;
  /** A fresh ws Sender, and its class (for the static `frame`). Optional: absent, it is not checked. */
  sender?(): object;
  /** net.Socket's prototype: `_handle` is an accessor there (lib/net.js), and constructing a Socket costs ~1 ms. */
  socket(): object;
  /** The node:net module. */
  net: object;
  pipeWrap(): unknown;
  streamWrap(): unknown;
  tcpWrap(): unknown;
}

/** The real process: this Node, the installed ws. */
export function systemProbe(): InternalsProbe {
  return {
    nodeVersion: process.versions.node,
    // Beside the module the loader already resolved for `import 'ws'` (cached): one small read, no lookup.
    wsVersion: () => (JSON.parse(readFileSync(new URL('package.json', import.meta.resolve('ws')), 'utf8')) as { version: string }).version,
    receiver: () => new (wsModule as unknown as { Receiver: new () => object }).Receiver(),
    webSocket: () => new (WebSocket as unknown as new (a: null, p: undefined, o: object) => object)(null, undefined, {}),
    sender: () => new (wsModule as unknown as { Sender: new () => object }).Sender(),
    socket: () => net.Socket.prototype,
    net,
    pipeWrap,
    streamWrap,
    tcpWrap,
  };
}

let checked = false;

/**
 * Throw HOTLINE_E_INTERNALS unless every Node and ws internal hotline uses is there. With no argument it checks the
 * real process, once: later calls return at once.
 *
 * @example
 * checkInternals(); // at the start of Host#start and Supervisor#start
 */
export function checkInternals(probe?: InternalsProbe): void {
  if (!probe && checked) return;
  const missing = findMissing(probe ?? systemProbe());
  if (missing.length > 0) {
    throw new HotlineError(
      'HOTLINE_E_INTERNALS',
      `this Node (${probe?.nodeVersion ?? process.versions.node}) or ws is not one hotline knows: ${missing.join('; ')}`,
    );
  }
  if (!probe) checked = true;
}

/** Everything wrong, each as a short phrase; empty when all is there. */
export function findMissing(p: InternalsProbe): string[] {
  const missing: string[] = [];
  const major = Number(p.nodeVersion.split('.')[0]);
  if (!KNOWN_NODE_MAJORS.includes(major)) missing.push(`Node major ${major} is not one of ${KNOWN_NODE_MAJORS.join(', ')}`);
  const wsVersion = attempt(p.wsVersion, 'the ws version', missing);
  if (wsVersion !== undefined && wsVersion !== KNOWN_WS_VERSION) missing.push(`ws ${wsVersion} is not ${KNOWN_WS_VERSION}`);

  const receiver = attempt(p.receiver, 'a ws Receiver', missing);
  if (receiver) {
    fields(receiver, 'ws Receiver', RECEIVER_FIELDS, missing);
    methods(receiver, 'ws Receiver', ['write'], missing);
    const ws = (receiver as { _writableState?: { length?: unknown } })._writableState;
    if (ws && typeof ws.length !== 'number') missing.push('ws Receiver._writableState.length');
  }
  const webSocket = attempt(p.webSocket, 'a ws WebSocket', missing);
  if (webSocket) {
    fields(webSocket, 'ws WebSocket', WEBSOCKET_FIELDS, missing);
    methods(webSocket, 'ws WebSocket', ['setSocket'], missing);
  }
  const sender = p.sender && attempt(p.sender, 'a ws Sender', missing);
  if (sender) {
    fields(sender, 'ws Sender', SENDER_FIELDS, missing);
    methods(sender.constructor, 'ws Sender', ['frame'], missing);
  }
  const socket = attempt(p.socket, 'a net.Socket', missing);
  if (socket) fields(socket, 'net.Socket', ['_handle'], missing);
  methods(p.net, 'net', ['_createServerHandle'], missing);

  const tcp = attempt(p.tcpWrap, "process.binding('tcp_wrap')", missing) as { TCP?: { prototype?: object } } | undefined;
  if (tcp) methods(tcp.TCP?.prototype ?? {}, 'tcp_wrap TCP', ['readStart', 'readStop', 'getsockname'], missing);
  const pipe = attempt(p.pipeWrap, "process.binding('pipe_wrap')", missing) as
    | { Pipe?: { prototype?: object }; constants?: { IPC?: unknown } }
    | undefined;
  if (pipe) {
    methods(pipe.Pipe?.prototype ?? {}, 'pipe_wrap Pipe', ['open', 'readStart', 'readStop', 'writeBuffer', 'close'], missing);
    if (typeof pipe.constants?.IPC !== 'number') missing.push('pipe_wrap constants.IPC');
  }
  const stream = attempt(p.streamWrap, "process.binding('stream_wrap')", missing) as Record<string, unknown> | undefined;
  if (stream) {
    if (typeof stream.WriteWrap !== 'function') missing.push('stream_wrap WriteWrap');
    if (!(stream.streamBaseState instanceof Int32Array)) missing.push('stream_wrap streamBaseState');
    for (const k of ['kReadBytesOrError', 'kArrayBufferOffset', 'kLastWriteWasAsync']) {
      if (typeof stream[k] !== 'number') missing.push(`stream_wrap ${k}`);
    }
  }
  return missing;
}

function attempt<T>(get: () => T, what: string, missing: string[]): T | undefined {
  try {
    return get();
  } catch (err) {
    missing.push(`${what} could not be read (${err instanceof Error ? err.message : String(err)})`);
    return undefined;
  }
}

function fields(obj: object, what: string, names: readonly string[], missing: string[]): void {
  for (const n of names) if (!(n in obj)) missing.push(`${what}.${n}`);
}

function methods(obj: object, what: string, names: readonly string[], missing: string[]): void {
  for (const n of names) if (typeof (obj as Record<string, unknown>)[n] !== 'function') missing.push(`${what}.${n}()`);
}
