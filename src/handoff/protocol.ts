/**
 * The IPC protocol between the supervisor and its workers (child_process.fork, `serialization: 'advanced'`, so
 * Buffers and plugin state travel as structured clones). Socket handles ride along as the `sendHandle` of a message.
 *
 * supervisor → worker: listener (+handle), start, req, export, conn (+handle), state, commit, abort, release, shutdown
 * old worker → new worker, through the handle lane (handle-lane.ts): conn (+handle), link (+handle when it moves), state
 * worker → supervisor: beat, ready, serving, fatal, res, conn (+handle), state, exported, ack, nack, committed
 */
import type { Bundle } from '../build/bundler.js';
import type { ReloadPolicy } from '../swap/reload-policy.js';
import type { ErrorCode } from '../errors.js';
import type { MessageData } from '../plugin/contract.js';
import type { FramingKind } from '../framing/framing.js';
import type { TlsOptions } from '../transport/tls.js';
import type { ClusterFlags, HostTuning } from '../config/tuning.js';

/** One listener the supervisor owns, as a worker sees it. */
export interface ListenerSpec {
  transport: 'ws' | 'tcp';
  host: string;
  port: number;
  framing?: FramingKind;
  /** Serve this folder over HTTP on the WebSocket port (`hotline start --static`). */
  static?: string;
  /** Speak TLS (wss://, tls://): each worker wraps the listener it is handed, reading these files itself. */
  tls?: TlsOptions;
}

/** What a worker runs. */
export interface WorkerConfig {
  entry: string;
  listen: ListenerSpec[];
  watch: boolean;
  dev: boolean;
  /** A worker started for an upgrade: load the plugin, but listen and dispatch only at commit. */
  upgrade: boolean;
  /** An upgrade worker forked with a handle lane on fd 4 (handle-lane.ts): read connections from it too. */
  lane?: boolean;
  /** `hotline start --sessions`: the file session store's directory, held by one worker at a time (session-lease.ts). */
  sessions?: string;
  /** `hotline start --cluster URL`: sessions in the NATS bucket every node shares (issue 13), instead of the file store. */
  cluster?: ClusterFlags;
  /**
   * `--state DIR` (or `--sessions`): the folder of the global state's checkpoint (src/state/). A restarted worker
   * starts from it; an upgrade's new worker writes to it only once it committed.
   */
  state?: string;
  /** Limits and timeouts from `--config` and the flags (src/config/tuning.ts). */
  tuning?: HostTuning;
  /**
   * A restarted worker: serve this build (the supervisor's last known good, last-known-good.ts) instead of building
   * the entry from disk. Checked by the worker (build-report.ts) before use. Absent: build from disk.
   */
  build?: Bundle;
  /** A worker restarted after the one before it died (crash or watchdog kill): sessions mark their replays (issue 11). */
  afterDeath?: boolean;
  /** issue 14: the supervisor serves an HTTP admin: keep metrics (`req` `metrics`) and forward swap events (`ops-event`). */
  metrics?: boolean;
}

/** One connection on its way from the old worker to the new one. */
export interface ConnTransfer {
  t: 'conn';
  /** `conn.id`, kept by the new worker (conn-id.ts). Absent from an older build: the new worker then makes one. */
  id?: string;
  kind: 'ws' | 'tcp';
  framing?: FramingKind;
  remoteAddress: string;
  protocol: string;
  /** Bytes read from the socket that no message has been decoded from yet: the new parser reads them first. */
  head: Uint8Array;
  /** onOpen already ran (false: it is still queued and runs in the new worker). */
  opened: boolean;
  state: unknown;
  /** Messages decoded but not yet dispatched, in order. */
  messages: MessageData[];
  /** The rooms the connection is in (src/rooms), in join order. Absent from an older build, or when in none. */
  rooms?: string[];
}

/**
 * issue 15: one outbound link on its way from the old worker to the new one, through the handle lane only, once the
 * new worker said it reads links (`links: 1` in its hello, transfer-codec.ts). Checked field by field on arrival
 * (link-transfer.ts) against the bounds of the link's own options.
 */
export interface LinkTransfer {
  t: 'link';
  name: string;
  /** The link's normalised options (LinkSpec.key, src/links/link-options.ts): the new version claims it by them. */
  key: string;
  /** `stream` (tcp://) or `ws` (ws://): the raw TCP socket travels as the message's handle. Absent: state only. */
  wire?: 'stream' | 'ws';
  /** Why only the state moved (tls, not open, not quiescent in time): the new worker reconnects it. */
  reason?: string;
  /** Bytes read of the next frame and not yet a message: the framing's partial frame, or a ws Receiver's, as wire bytes. */
  head: Uint8Array;
  /** link.state of the version that served it, and that version. */
  state: unknown;
  version: string;
  counters: Record<string, number>;
  attempt: number;
  everOpened: boolean;
  open: boolean;
  /** Sends queued and not yet written, in order. */
  sends: MessageData[];
  /** Events not yet dispatched, in order (LinkEvent, src/links/link.ts). */
  events: unknown[];
}

/** The plugin's global state, from the old worker's current version. */
export interface StateTransfer {
  t: 'state';
  plugin: string;
  version: string;
  state: unknown;
  /**
   * The old worker's message counters, so status shows totals since start across upgrades. `in` leaves out the
   * messages that travel queued with their connection: the new worker counts those again as it takes them.
   * Absent from an older build.
   */
  totals?: { in: number; out: number; dropped?: number };
}

export interface WireError {
  code: ErrorCode;
  message: string;
}

export type ToWorker =
  /** A listener's bound socket (+handle) and where it is bound (absent from an older supervisor): the worker checks it. */
  | { t: 'listener'; index: number; bound?: { host: string; port: number } }
  /** The old worker's end of the new worker's handle lane (+handle): send connections through it. */
  | { t: 'lane' }
  | { t: 'start'; config: WorkerConfig }
  | { t: 'req'; id: number; cmd: 'reload' | 'rollback' | 'status' | 'metrics' | 'promote'; trigger?: 'signal'; force?: boolean; policy?: ReloadPolicy }
  | { t: 'export'; settleTimeout: number }
  | ConnTransfer
  | LinkTransfer
  | StateTransfer
  | { t: 'commit' }
  | { t: 'abort' }
  | { t: 'release' }
  | { t: 'shutdown' };

export type FromWorker =
  /** The worker's event loop runs (watchdog.ts): sent every heartbeatInterval(watchdogTimeout) ms from its start. */
  | { t: 'beat' }
  /** issue 14: a swap event of the worker's host, for the supervisor's event stream (src/ops/forward-events.ts). */
  | { t: 'ops-event'; event: unknown }
  | { t: 'ready'; plugin: { name: string; version: string } }
  /** The build the worker serves from now on (at ready, and after each swap): the supervisor checks and keeps it. */
  | { t: 'serving'; build: Bundle }
  | { t: 'fatal'; error: WireError }
  | { t: 'res'; id: number; ok: true; result: unknown }
  | { t: 'res'; id: number; ok: false; error: WireError }
  | ConnTransfer
  | StateTransfer
  /**
   * `laneItems`: transfers sent through the handle lane instead of through the supervisor (absent: none).
   * `links` (issue 15): links handed over with their socket, and with their state only (the new worker reconnects them).
   */
  | { t: 'exported'; moved: number; sentAway: number; stateBytes: number; laneItems?: number; links?: { moved: number; reconnecting: number } }
  /** Running counts: `n` connections adopted, `items` transfers taken (connections and the global state). */
  | { t: 'ack'; n: number; items: number }
  | { t: 'nack'; error: WireError }
  | { t: 'committed' };
