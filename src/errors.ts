/**
 * The HOTLINE_E_* catalogue. Every error hotline reports carries one of these codes; `docs/errors.md` documents
 * each of them, and `test/errors.test.ts` checks that the two lists agree.
 */

/** Every code hotline can report, with the message template used when none is given. */
export const ERROR_CODES = {
  HOTLINE_E_BUILD: 'the plugin failed to build',
  HOTLINE_E_ENTRY_MISSING: 'the plugin entry file does not exist',
  HOTLINE_E_PLUGIN_EVAL: 'the plugin threw while its module was evaluated',
  HOTLINE_E_PLUGIN_NO_DEFAULT: 'the plugin module has no default export',
  HOTLINE_E_PLUGIN_SHAPE: 'the plugin default export has the wrong shape',
  HOTLINE_E_PLUGIN_API: 'the plugin was written for another host API major',
  HOTLINE_E_INIT: 'the plugin init() threw',
  HOTLINE_E_INIT_TIMEOUT: 'the plugin init() did not settle in time',
  HOTLINE_E_CHECK: 'the plugin check() refused the new version',
  HOTLINE_E_MIGRATE: 'the plugin migrate() threw',
  HOTLINE_E_MIGRATE_CONNECTION: 'the plugin migrateConnection() threw',
  HOTLINE_E_SWAP_TIMEOUT: 'in-flight handlers of the old version did not settle within settleTimeout',
  HOTLINE_E_SWAP_CLOSED: 'the host is closing; the swap was not started',
  HOTLINE_E_NO_PREVIOUS: 'there is no previous build to roll back to',
  HOTLINE_E_PROBATION: 'the new version failed probation and was rolled back',
  HOTLINE_E_HANDLER: 'a plugin handler threw or rejected',
  HOTLINE_E_PAYLOAD_TOO_LARGE: 'a message exceeded maxPayload',
  HOTLINE_E_MAX_CONNECTIONS: 'the host is at maxConnections',
  HOTLINE_E_SLOW_CONSUMER: 'a connection send buffer exceeded maxSendBuffer',
  HOTLINE_E_HANDSHAKE_TIMEOUT: 'the client did not complete its handshake in time',
  HOTLINE_E_HANDSHAKE_BACKLOG: 'too many handshakes wait for their turn; the connection was refused',
  HOTLINE_E_CONNECTION_CLOSED: 'the connection is closed',
  HOTLINE_E_CONFIG: 'invalid configuration',
  HOTLINE_E_ADMIN: 'the admin socket request failed',
  HOTLINE_E_ADMIN_UNREACHABLE: 'no host answers on the admin socket',
  HOTLINE_E_LISTEN: 'a listener could not be started',
  HOTLINE_E_TLS_CONFIG: 'the TLS certificate or key of a listener is missing, unreadable or invalid',
  HOTLINE_E_SESSION_EXPIRED: 'the session outlived its TTL; a new session was started',
  HOTLINE_E_SESSION_UNKNOWN: 'no session matches the resume token; a new session was started',
  HOTLINE_E_SESSION_TOKEN: 'the resume token signature is invalid (tampered or another secret); a new session was started',
  HOTLINE_E_SESSION_OVERFLOW: 'the replay buffer overflowed: messages the client missed were dropped; a new session was started',
  HOTLINE_E_SESSION_PROTOCOL: 'a malformed or out-of-order session frame',
  HOTLINE_E_SESSION_STORE: 'the session store failed',
  HOTLINE_E_CLIENT_QUEUE_FULL: 'the client send queue is full (maxQueue messages not yet acknowledged)',
  HOTLINE_E_CLIENT_CLOSED: 'the client is closed',
  HOTLINE_E_CLIENT_UNSUPPORTED: 'the server does not speak the hotline.v1 session protocol',
  HOTLINE_E_UPGRADE_IN_PROGRESS: 'a process upgrade is already running',
  HOTLINE_E_UPGRADE_READY_TIMEOUT: 'the new worker was not ready in time and was killed; the old worker keeps serving',
  HOTLINE_E_UPGRADE_WORKER_EXIT: 'the new worker exited during the upgrade; the old worker keeps serving',
  HOTLINE_E_UPGRADE_REFUSED: 'the new worker refused a connection or the state; the old worker keeps serving',
  HOTLINE_E_UPGRADE_TIMEOUT: 'the handoff did not complete in time; the old worker keeps serving',
  HOTLINE_E_WORKER_EXIT: 'the worker process exited unexpectedly and is being restarted',
  // Issue 9, items 1-3: malformed input and the last-resort handler.
  HOTLINE_E_ADMIN_REQUEST: 'an admin socket line is not a well-formed request',
  HOTLINE_E_INTERNAL: "an exception or rejection escaped hotline's own code",
  HOTLINE_E_PLUGIN_ESCAPED: "an exception or rejection escaped plugin code outside any handler hotline runs (an unawaited promise, a plugin's own callback)",
  HOTLINE_E_HANDOFF_FRAME: 'a handoff lane frame or transfer body is malformed',
  // Issue 9 items 4-5: inbound queues and partial frames are bounded.
  HOTLINE_E_INBOUND_OVERFLOW: 'a connection queued more than maxQueuedBytes of received messages not yet handled',
  HOTLINE_E_FRAME_TIMEOUT: 'a partial frame or message made no progress within frameTimeout',
  HOTLINE_E_INCOMPLETE_BUDGET: 'the bytes held in partial frames across all connections would exceed maxIncompleteBytes',
  HOTLINE_E_PONG_TIMEOUT: 'a WebSocket client did not answer a ping within pongTimeout',
  // issue 9 items 6-8 (sessions and admission, limits from the CLI)
  HOTLINE_E_SESSION_EVICTED: 'a detached session was evicted: sessions.maxDetached sessions were already waiting for their clients',
  HOTLINE_E_IP_LIMIT: 'a connection was refused: its IP address is over limits.maxConnectionsPerIp or limits.handshakeRatePerIp',
  // issue 10, fault 7: conn.close() arguments are checked before the connection changes phase.
  HOTLINE_E_CLOSE_CODE: 'conn.close() was given a close code or reason that cannot be sent',
  // issue 10, fault 6: the host's one operation lock (src/lock/operation-lock.ts).
  HOTLINE_E_OPERATION_TIMEOUT: 'an operation waited too long for the one holding the host operation lock',
  // issue 11 (inline containment): what plugin code may not do to the host, and errors that escaped it.
  HOTLINE_E_PLUGIN_FORBIDDEN: 'plugin code called something that would end or damage the host process (process.exit, abort, kill)',
  HOTLINE_E_PLUGIN_POLLUTED: 'plugin code changed a built-in prototype or global the host relies on; it was repaired',
  // issue 10 (supervisor and worker state machines)
  HOTLINE_E_WORKER_PHASE: 'the worker refused a supervisor message that does not belong to its current phase',
  // issue 11 (inline backstops): the supervisor's watchdog and the abandoned async handler.
  HOTLINE_E_WORKER_HUNG: "a worker's event loop sent no heartbeat within watchdogTimeout; the supervisor killed and restarted it",
  HOTLINE_E_HANDLER_HUNG: 'an async handler did not settle within hangTimeout; it was abandoned and its connection moved on',
  // issue 11 (inline mode): last known good and poison messages.
  HOTLINE_E_WORKER_LKG: 'the worker died while a new build was on probation; it was restarted on the last known good build instead',
  HOTLINE_E_WORKER_CRASH_LOOP: 'restarted workers kept dying before they were ready; the supervisor stopped restarting them and exits',
  HOTLINE_E_WORKER_BUILD: 'a build a worker reported, or was told to start on, failed validation; it was refused',
  HOTLINE_E_POISON_MESSAGE: 'a message was in flight at two hangs or crashes (worker deaths with sessions, or worker-mode version failures); it was dropped instead of handled a third time',
  // issue 10 (Node and ws internals in one module, src/internals/): the startup self-check.
  // issue 11 (worker isolation): a version in its own worker thread, terminated and restored when it fails.
  HOTLINE_E_VERSION_CRASHED: "a worker-mode version's thread died (an uncaught exception, process.exit); the host restored the last known good version",
  HOTLINE_E_VERSION_OOM: "a worker-mode version's thread ran out of memory (workerLimits); the host restored the last known good version",
  HOTLINE_E_STATE_CLONE: 'the state cannot cross into a worker thread (structured clone refused it: a function, a class instance with methods, a socket)',
  HOTLINE_E_WORKER_PROTOCOL: 'a worker-mode version sent the host a message it does not take, or a call to it timed out',
  HOTLINE_E_INTERNALS: 'this Node or ws version lacks an internal hotline relies on (or is not one it knows); nothing was started',
  // issue 11 (durable global state): checkpoints of the plugin's global state (src/state/).
  HOTLINE_E_STATE_SERIALIZE: 'the global state cannot be serialised (a function, a symbol, …); no checkpoint was written, the previous one stands',
  HOTLINE_E_STATE_TOO_LARGE: 'the serialised global state is over state.maxBytes; no checkpoint was written, the previous one stands',
  HOTLINE_E_STATE_WRITE: 'a checkpoint could not be written (or its folder created); the previous one stands',
  HOTLINE_E_STATE_CORRUPT: 'the checkpoint file was refused at load (truncated, damaged, oversized, of another plugin); the host started from init()',
  HOTLINE_E_STATE_RESTORE: "the plugin's migrate() refused the checkpoint, or an earlier restore of it died twice; the host started from init()",
  // issue 14 (operations): the HTTP admin listener and its bearer token.
  HOTLINE_E_HTTP_ADMIN: 'the HTTP admin listener cannot start: a bad address or token, or the address is in use',
  HOTLINE_E_HTTP_ADMIN_EXPOSED: 'the HTTP admin was asked to bind beyond loopback without a token; refused',
  HOTLINE_E_ADMIN_TOKEN: 'an HTTP admin API request had no bearer token (401) or a wrong one (403)',
  // issue 13 (rooms, host-owned): the bounds on a room name and on the rooms of one connection.
  HOTLINE_E_ROOM_NAME: 'a room name is not a non-empty, well-formed string of at most 255 bytes of UTF-8',
  HOTLINE_E_ROOM_WORKER: 'rooms are not available to a worker-mode version yet (conn.join, ctx.to, ctx.rooms, ctx.members); run the plugin inline',
  HOTLINE_E_ROOM_LIMIT: 'the connection is in the most rooms one connection may be in (128); the room was not joined',
  // issue 15 (links): outbound long connections owned by the host (src/links/).
  HOTLINE_E_LINK_OPTIONS: 'invalid link options (url, framing, limits), or a link of that name is already open with other options',
  HOTLINE_E_LINK_QUEUE_FULL: "the link is not open and its send queue is full (maxQueuedSends or maxQueuedBytes); the message was not queued",
  HOTLINE_E_LINK_CLOSED: 'the link is closed for good (by the plugin, by a swap that did not claim it, or at shutdown)',
  HOTLINE_E_LINK_FRAME: 'the upstream sent a frame the link refuses (over maxPayload, malformed); the link was closed and reconnects',
  HOTLINE_E_LINK_CONNECT: 'a link could not connect to its upstream (refused, timed out, TLS or WebSocket handshake failed); it retries with backoff',
  HOTLINE_E_LINK_WORKER: 'links run in inline mode only: ctx.link() was called by a worker-mode version',
  HOTLINE_E_LINK_NOT_MOVED: "a process upgrade could not carry the link's socket (tls://, wss://, or it did not quiesce in time); the new process reconnected it",
  HOTLINE_E_LINK_ADOPT: 'a link handed over by a process upgrade was refused (malformed, over its bounds, its socket missing, named twice); the upgrade aborted',
  // issue 13 (sessions on NATS JetStream KV, src/cluster/).
  HOTLINE_E_CLUSTER_UNAVAILABLE: 'NATS is unreachable: at start (atStart: fail, or the wait timed out), or a store operation that needs it now',
  HOTLINE_E_SESSION_CONFLICT: 'another node took this session over (compare-and-set on its record failed); this copy was closed',
  HOTLINE_E_SESSION_RECORD: 'a session record (in the NATS bucket, or its rooms in any store) is malformed or oversized (written by something else); it was refused',
  // issue 13 (rooms across nodes, src/cluster/room-bus.ts): counted in status().cluster, logged rate-limited.
  HOTLINE_E_CLUSTER_MESSAGE: 'a message on a room subject from NATS is malformed or over the payload bound; it was refused, not delivered',
  HOTLINE_E_CLUSTER_DROPPED: 'room messages were not published to the other nodes: NATS unreachable with whileDown drop, the buffer full, or the node closing',
  HOTLINE_E_CLUSTER_PUBLISH: "the NATS client refused a room message (over the server's max_payload); local members got it, other nodes did not",
  // issue 13 (presence across nodes, src/cluster/presence*.ts).
  HOTLINE_E_PRESENCE_RECORD: 'a presence record in the NATS bucket is malformed, oversized or over the bounds (written by something else); it was refused and counted',
  HOTLINE_E_PRESENCE_LIMIT: "this node's rooms and members are over the presence bounds (maxRooms, maxMembers, maxRecordBytes); its record was published incomplete",
  // issue 12: several versions alive at once.
  HOTLINE_E_POLICY: 'a reload policy (pin, canary) is malformed, or cannot run in this state (a canary with no running version)',
  HOTLINE_E_CANARY: 'the canary version went over its error budget and was rolled back; its connections moved to the stable version',
  HOTLINE_E_CANARY_ACTIVE: 'a canary is running: promote or roll it back before another reload',
  HOTLINE_E_NOTHING_TO_PROMOTE: 'promote found no canary and no pinned version to fold into the current one',
  HOTLINE_E_BROADCAST_WORKER: 'ctx.broadcast(data, filter, { allVersions: true }) was called by a worker-mode version: the filter cannot run on connections owned by other threads',
  HOTLINE_E_UPGRADE_VERSIONS: 'a process upgrade refused: more than one plugin version is live (pinned or canary)',
} as const;

/** A stable error code, such as `HOTLINE_E_PLUGIN_SHAPE`. */
export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * The one error class hotline throws and reports. `code` is stable and safe to branch on; `message` is for humans.
 *
 * @example
 * try { await host.reload(); }
 * catch (err) { if (err instanceof HotlineError && err.code === 'HOTLINE_E_CHECK') console.log('refused'); }
 */
export class HotlineError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? ERROR_CODES[code], options);
    this.name = 'HotlineError';
    this.code = code;
  }

  /** A plain object for JSON: the admin socket, `hotline status --json`, swap history. */
  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** True when `err` is a HotlineError, optionally with the given code. */
export function isHotlineError(err: unknown, code?: ErrorCode): err is HotlineError {
  return err instanceof HotlineError && (code === undefined || err.code === code);
}

/** The message of anything thrown, for wrapping user errors into a coded one. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
