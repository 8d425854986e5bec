/**
 * Every limit and timeout a host has, as `hotline start`/`dev` flags and as keys of a `--config <file.json>` (issue 9
 * item 8). One table drives the flags, the config file's validation and the help text, so the three cannot drift.
 * Flags override the file; bad values of either are HOTLINE_E_CONFIG naming the flag or the key, before anything
 * listens.
 *
 * What comes out is a plain object (it travels to the supervised worker inside its WorkerConfig) that the host's own
 * option validation checks again in the process that runs it.
 */
import { readFileSync } from 'node:fs';
import { HotlineError, messageOf } from '../errors.js';
import type { HostLimits, HostOptions } from '../host/options.js';
import type { SendAwayOptions, SessionOptions } from '../session/options.js';
import type { SessionStore } from '../session/store.js';
import type { StateOptions } from '../state/options.js';
import type { ProbationOptions } from '../swap/probation.js';
import type { WatchOptions } from '../watch/watcher.js';

/** How a value is read and checked: each is a plain decimal number on the command line, a JSON number in the file. */
type Kind =
  /** milliseconds, > 0 */
  | 'ms'
  /** bytes, an integer > 0 */
  | 'bytes'
  /** an integer > 0 */
  | 'count'
  /** per second, > 0 */
  | 'rate'
  /** a fraction, 0 < x <= 1 */
  | 'ratio';

interface Tunable {
  /** The option's path in HostOptions, which is also its key in the config file. */
  key: string;
  /** Absent for a config key that never had a flag of its own. */
  flag?: string;
  kind: Kind;
  /** 0 is allowed and means "off". */
  zeroOff?: boolean;
  /** Only meaningful with --sessions: refused without it rather than ignored. */
  needsSessions?: boolean;
  /** Only meaningful with checkpoints on (--state DIR, or --sessions): refused without them rather than ignored. */
  needsState?: boolean;
  help: string;
  /** A name renamed in 0.2, still accepted for one release: the new key. Left out of the help. */
  deprecatedFor?: string;
}

/**
 * The limits and timeouts: one row each drives its flag, its config-file key and its --help line. The host checks the
 * values (host/options.ts); this table only parses them.
 */
export const TUNABLES: readonly Tunable[] = [
  { key: 'limits.maxPayload', flag: 'max-payload', kind: 'bytes', help: 'largest message accepted (default 1 MiB)' },
  { key: 'limits.maxConnections', flag: 'max-connections', kind: 'count', help: 'live connections at most (default 10000)' },
  { key: 'limits.maxSendBuffer', flag: 'max-send-buffer', kind: 'bytes', help: 'bytes queued for one slow client before it is closed (default 4 MiB)' },
  { key: 'limits.handshakeTimeout', flag: 'handshake-timeout', kind: 'ms', help: 'WebSocket upgrade and session hello deadline (default 10000)' },
  { key: 'limits.maxConnectionsPerIp', flag: 'max-connections-per-ip', kind: 'count', zeroOff: true, help: 'sockets one IP may hold (default 0: off)' },
  { key: 'limits.handshakeRatePerIp', flag: 'handshake-rate-per-ip', kind: 'rate', zeroOff: true, help: 'handshakes per second per IP (default 0: off)' },
  // inbound queues, partial frames, WebSocket pings (issue 9 items 4-5)
  { key: 'limits.maxQueuedMessages', flag: 'max-queued-messages', kind: 'count', help: 'inbound messages queued per connection' },
  { key: 'limits.maxQueuedBytes', flag: 'max-queued-bytes', kind: 'bytes', help: 'inbound bytes queued per connection' },
  { key: 'limits.frameTimeout', flag: 'frame-timeout', kind: 'ms', help: 'an incomplete frame or message must progress within this' },
  { key: 'limits.maxIncompleteBytes', flag: 'max-incomplete-bytes', kind: 'bytes', help: 'bytes held in incomplete frames, all connections together' },
  { key: 'limits.maxIncompleteBytesPerIp', flag: 'max-incomplete-bytes-per-ip', kind: 'bytes', zeroOff: true, help: 'bytes one IP may hold in incomplete frames; past it its sockets wait (default 0: off)' },
  { key: 'limits.pingInterval', flag: 'ping-interval', kind: 'ms', zeroOff: true, help: 'WebSocket ping every this many ms' },
  { key: 'limits.pongTimeout', flag: 'pong-timeout', kind: 'ms', help: 'a ping unanswered this long closes the connection' },
  { key: 'settleTimeout', flag: 'settle-timeout', kind: 'ms', help: 'in-flight handlers must settle within this at a swap (default 5000)' },
  { key: 'hookTimeout', flag: 'hook-timeout', kind: 'ms', help: 'init, check, migrate, dispose deadline (default 5000)' },
  // issue 11 (inline backstops)
  { key: 'hangTimeout', flag: 'hang-timeout', kind: 'ms', help: 'an async handler not settled within this is abandoned, HOTLINE_E_HANDLER_HUNG (default 2000)' },
  { key: 'watchdogTimeout', flag: 'watchdog-timeout', kind: 'ms', zeroOff: true, help: 'hotline start: a worker whose event loop is silent this long is killed and restarted (default 10000)' },
  // issue 11 (worker isolation): the heap of each worker-mode version; --isolation itself is a choice, below.
  { key: 'workerLimits.maxOldGenerationSizeMb', flag: 'worker-heap-mb', kind: 'count', help: 'with --isolation worker: heap per version, MB; over it HOTLINE_E_VERSION_OOM (default 512)' },
  { key: 'shutdownTimeout', flag: 'shutdown-timeout', kind: 'ms', help: 'clients still connected this long after shutdown are cut off (default 5000)' },
  { key: 'probation.window', flag: 'probation-window', kind: 'ms', help: 'probation after a swap (default 30000)' },
  { key: 'probation.minErrors', flag: 'probation-min-errors', kind: 'count', help: 'errors before the rate is judged (default 5)' },
  { key: 'probation.maxErrorRate', flag: 'probation-max-error-rate', kind: 'ratio', help: 'error rate that rolls back (default 0.5)' },
  { key: 'watch.debounce', flag: 'watch-debounce', kind: 'ms', help: 'quiet time after a change before a reload (default 2)' },
  { key: 'watch.stability', flag: 'watch-stability', kind: 'ms', help: 'a file must hold still this long (default 10)' },
  { key: 'sessions.ttl', flag: 'session-ttl', kind: 'ms', needsSessions: true, help: 'how long a detached session waits for its client (default 60000)' },
  { key: 'sessions.maxDetached', flag: 'max-detached-sessions', kind: 'count', needsSessions: true, help: 'detached sessions at most; the oldest is evicted (default 10000)' },
  { key: 'sessions.ackInterval', flag: 'session-ack-interval', kind: 'ms', needsSessions: true, help: 'how often acks are flushed (default 20)' },
  { key: 'sessions.reconnectDelay', flag: 'session-reconnect-delay', kind: 'ms', needsSessions: true, help: 'reconnect hint at shutdown (default 1000)' },
  // issue 11 (durable global state): checkpoints, on with --sessions or --state DIR (src/state/).
  { key: 'state.interval', flag: 'state-interval', kind: 'ms', zeroOff: true, needsState: true, help: 'checkpoint the global state this often when it changed; 0: only at swaps and shutdown (default 5000)' },
  { key: 'state.maxBytes', flag: 'state-max-bytes', kind: 'bytes', needsState: true, help: 'largest serialised global state checkpointed (default 16 MiB)' },
  { key: 'sendAway.batchSize', flag: 'send-away-batch-size', kind: 'count', help: 'connections sent away per batch at shutdown (default 1000)' },
  { key: 'sendAway.interval', flag: 'send-away-interval', kind: 'ms', help: 'pause between shutdown batches (default 250)' },
  // Renamed in 0.2 (one word, one meaning: docs/guide.md#words-used-in-this-guide); the old names work for one release.
  { key: 'drainTimeout', flag: 'drain-timeout', kind: 'ms', deprecatedFor: 'settleTimeout', help: '' },
  { key: 'drain.batchSize', flag: 'drain-batch-size', kind: 'count', deprecatedFor: 'sendAway.batchSize', help: '' },
  { key: 'drain.interval', flag: 'drain-interval', kind: 'ms', deprecatedFor: 'sendAway.interval', help: '' },
  { key: 'probation.windowMs', kind: 'ms', deprecatedFor: 'probation.window', help: '' },
  { key: 'watch.debounceMs', kind: 'ms', deprecatedFor: 'watch.debounce', help: '' },
  { key: 'watch.stabilityMs', kind: 'ms', deprecatedFor: 'watch.stability', help: '' },
];

/** The host options the table sets, as a plain (structured-clonable) object. */
export interface HostTuning {
  /** HostLimits, plus limits of issue 9 items 4-5 by name until HostLimits has them all. */
  limits?: HostLimits & Record<string, number>;
  settleTimeout?: number;
  hookTimeout?: number;
  hangTimeout?: number;
  watchdogTimeout?: number;
  shutdownTimeout?: number;
  probation?: Partial<ProbationOptions> | false;
  watch?: WatchOptions;
  sessions?: Omit<SessionOptions, 'store'>;
  state?: Omit<StateOptions, 'dir'>;
  sendAway?: SendAwayOptions;
  isolation?: 'inline' | 'worker';
  workerLimits?: { maxOldGenerationSizeMb?: number };
}

/** issue 11: `--isolation` and the config key `isolation`, the one tunable that is a word, not a number. */
const ISOLATIONS = ['inline', 'worker'] as const;

/** parseArgs options for every tunable flag, plus --config and --no-probation. */
export const TUNING_ARG_OPTIONS: Record<string, { type: 'string' | 'boolean' }> = {
  config: { type: 'string' },
  'no-probation': { type: 'boolean' },
  isolation: { type: 'string' },
  ...Object.fromEntries(TUNABLES.flatMap((t) => (t.flag ? [[t.flag, { type: 'string' as const }]] : []))),
};

/** The help lines for `hotline --help`. */
export function tuningHelp(): string {
  const current = TUNABLES.filter((t) => !t.deprecatedFor);
  const width = Math.max(...current.map((t) => t.flag!.length)) + 5;
  const lines = current.map((t) => `  --${t.flag} N`.padEnd(width + 2) + ` ${t.key}: ${t.help}`);
  return [
    'limits and timeouts (start and dev; ms, bytes, counts; each is also a key of --config FILE.json, flags win):',
    `  --config FILE.json`.padEnd(width + 2) + ' { "limits": { "maxPayload": 65536 }, "sessions": { "ttl": 30000 }, ... }',
    `  --no-probation`.padEnd(width + 2) + ' probation: false (no automatic rollback)',
    `  --isolation inline|worker`.padEnd(width + 2) + ' isolation: where plugin versions run (default inline; worker: a thread per version, restored when it hangs, crashes or runs out of memory)',
    ...lines,
  ].join('\n');
}

function describe(t: Tunable): string {
  const base = { ms: 'a positive number of ms', bytes: 'a positive integer (bytes)', count: 'a positive integer', rate: 'a positive number per second', ratio: 'a number in (0, 1]' }[t.kind];
  return t.zeroOff ? `${base}, or 0 for off` : base;
}

function valid(t: Tunable, n: number): boolean {
  if (!Number.isFinite(n)) return false;
  if (n === 0) return t.zeroOff === true;
  if (n < 0) return false;
  if ((t.kind === 'bytes' || t.kind === 'count') && !Number.isInteger(n)) return false;
  return t.kind !== 'ratio' || n <= 1;
}

// Decimal digits only, as for --port: Number('') is 0 and Number('0x10') is 16, neither of which the user meant.
const DECIMAL = /^\d{1,15}(\.\d{1,15})?$/;

function setPath(out: Record<string, unknown>, key: string, value: unknown): void {
  const dot = key.indexOf('.');
  if (dot === -1) {
    out[key] = value;
    return;
  }
  const head = key.slice(0, dot);
  const inner = (out[head] ??= {}) as Record<string, unknown>;
  inner[key.slice(dot + 1)] = value;
}

const BY_KEY = new Map(TUNABLES.map((t) => [t.key, t]));
/** Top-level keys of the file: the groups, and the timeouts that are not in one. */
const GROUPS = new Set(TUNABLES.filter((t) => t.key.includes('.')).map((t) => t.key.slice(0, t.key.indexOf('.'))));

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Check a parsed config file: every key known, every value a number of the right kind (`"probation": false` too).
 * Returns the entries by key, in the file's order. Throws HOTLINE_E_CONFIG naming the first bad key.
 */
export function validateConfig(doc: unknown, source: string): Map<string, number | false> {
  const bad = (key: string, why: string) => new HotlineError('HOTLINE_E_CONFIG', `${source}: ${key}: ${why}`);
  if (!isPlainObject(doc)) throw bad('(top level)', 'must be a JSON object of options, e.g. { "limits": { "maxPayload": 65536 } }');
  const out = new Map<string, number | false>();
  let isolation: 'inline' | 'worker' | undefined;
  const leaf = (key: string, value: unknown) => {
    const t = BY_KEY.get(key);
    if (!t) throw bad(key, 'is not a known option (see docs/cli.md#limits-and-timeouts)');
    if (typeof value !== 'number' || !valid(t, value)) throw bad(key, `must be ${describe(t)}, got ${JSON.stringify(value) ?? String(value)}`);
    out.set(key, value);
  };
  for (const top of Object.keys(doc)) {
    const value = doc[top];
    if (top === 'isolation') {
      if (!ISOLATIONS.includes(value as 'inline')) throw bad(top, `must be "inline" or "worker", got ${JSON.stringify(value) ?? String(value)}`);
      isolation = value as 'inline' | 'worker';
      continue;
    }
    if (GROUPS.has(top)) {
      if (top === 'probation' && value === false) {
        out.set('probation', false);
        continue;
      }
      if (!isPlainObject(value)) throw bad(top, `must be an object${top === 'probation' ? ' or false' : ''}, got ${JSON.stringify(value) ?? String(value)}`);
      for (const k of Object.keys(value)) leaf(`${top}.${k}`, value[k]);
    } else {
      leaf(top, value);
    }
  }
  if (isolation) CONFIG_ISOLATION.set(out, isolation);
  return out;
}

/** The `isolation` key of a validated config file, beside its numbers (validateConfig's map has numbers only). */
const CONFIG_ISOLATION = new WeakMap<Map<string, number | false>, 'inline' | 'worker'>();

/** Read and validate `--config FILE.json`. */
export function loadConfigFile(file: string): Map<string, number | false> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new HotlineError('HOTLINE_E_CONFIG', `--config ${file}: cannot read it: ${messageOf(err)}`, { cause: err });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new HotlineError('HOTLINE_E_CONFIG', `--config ${file}: not valid JSON: ${messageOf(err)}`, { cause: err });
  }
  return validateConfig(doc, `--config ${file}`);
}

/**
 * The tuning that `--config` and the flags describe (flags win). `sessions`: whether --sessions is on; tunables of
 * sessions without it are refused, not ignored.
 */
export function parseTuning(flags: Record<string, string | boolean | undefined>, sessions: boolean): HostTuning {
  const values = typeof flags.config === 'string' ? loadConfigFile(flags.config) : new Map<string, number | false>();
  for (const t of TUNABLES) {
    if (!t.flag) continue;
    const text = flags[t.flag];
    if (text === undefined) continue;
    const n = typeof text === 'string' && DECIMAL.test(text) ? Number(text) : NaN;
    if (!valid(t, n)) throw new HotlineError('HOTLINE_E_CONFIG', `--${t.flag} must be ${describe(t)}, got "${String(text)}"`);
    values.set(t.key, n);
  }
  if (flags['no-probation'] === true) values.set('probation', false);
  const out: Record<string, unknown> = {};
  const isolation = flags.isolation ?? CONFIG_ISOLATION.get(values);
  if (isolation !== undefined) {
    if (!ISOLATIONS.includes(isolation as 'inline')) throw new HotlineError('HOTLINE_E_CONFIG', `--isolation must be "inline" or "worker", got "${String(isolation)}"`);
    out.isolation = isolation;
  }
  for (const [key, value] of values) {
    if (key === 'probation') {
      out.probation = false;
      continue;
    }
    const t = BY_KEY.get(key)!;
    if (t.needsSessions && !sessions) throw new HotlineError('HOTLINE_E_CONFIG', `${key} (--${t.flag}) needs --sessions`);
    if (t.needsState && !sessions && typeof flags.state !== 'string') throw new HotlineError('HOTLINE_E_CONFIG', `${key} (--${t.flag}) needs --state DIR or --sessions`);
    // probation: false wins over a probation.* value: off is off.
    if (key.startsWith('probation.') && out.probation === false) continue;
    setPath(out, t.deprecatedFor ?? key, value);
  }
  return out as HostTuning;
}

/**
 * The createHost options of a tuning, for a host that watches or not, keeps sessions in `store` or not, and
 * checkpoints its global state in `stateDir` or not. Shared by `hotline dev` (in process) and the supervised worker
 * of `hotline start`.
 */
export function tunedHostOptions(t: HostTuning | undefined, watch: boolean, store: SessionStore | undefined, stateDir?: string, cluster?: ClusterFlags): Partial<HostOptions> {
  const { watch: watchOptions, sessions, state, ...rest } = t ?? {};
  // issue 13: `--cluster URL[,URL]` keeps sessions in the NATS bucket every node shares (instead of a file store),
  const nats = cluster && { store: 'nats' as const, servers: cluster.servers, ...(cluster.wait !== undefined && { atStart: 'wait' as const, waitTimeout: cluster.wait }) };
  return {
    ...rest,
    watch: watch ? (watchOptions ?? true) : false,
    ...(nats ? { sessions: { ...sessions, ...nats } } : store && { sessions: { ...sessions, store } }),
    // issue 13: and its rooms span the nodes (the cluster bus).
    ...(cluster && { cluster: { servers: cluster.servers, ...(cluster.wait !== undefined && { atStart: 'wait' as const, waitTimeout: cluster.wait }), ...(cluster.node !== undefined && { node: cluster.node }) } }),
    ...(stateDir && { state: { ...state, dir: stateDir } }),
  };
}

/** `--cluster nats://…[,nats://…]` and `--cluster-wait MS` (issue 13), checked by {@link parseClusterFlags}. */
export interface ClusterFlags {
  servers: string[];
  /** Wait this long for NATS at start instead of failing at once. */
  wait?: number;
  /** `--cluster-node NAME`: this node's name in the cluster (presence), kept across restarts. */
  node?: string;
}

/** The cluster flags, or undefined without --cluster; a malformed one is HOTLINE_E_CONFIG before anything starts. */
export function parseClusterFlags(flags: Record<string, string | boolean | undefined>): ClusterFlags | undefined {
  const c = flags.cluster;
  const w = flags['cluster-wait'];
  const n = flags['cluster-node'];
  if (c === undefined) {
    if (w !== undefined) throw new HotlineError('HOTLINE_E_CONFIG', '--cluster-wait needs --cluster');
    if (n !== undefined) throw new HotlineError('HOTLINE_E_CONFIG', '--cluster-node needs --cluster');
    return undefined;
  }
  if (n !== undefined && (typeof n !== 'string' || !/^[A-Za-z0-9._:-]{1,128}$/.test(n))) throw new HotlineError('HOTLINE_E_CONFIG', `--cluster-node must be 1-128 letters, digits, '.', '_', ':' or '-', got ${JSON.stringify(n)}`);
  const node = n === undefined ? {} : { node: n };
  const servers = typeof c === 'string' ? c.split(',').map((x) => x.trim()).filter((x) => x.length > 0) : [];
  if (servers.length === 0 || servers.some((x) => !/^(nats|tls):\/\/[^\s/]+$/.test(x))) throw new HotlineError('HOTLINE_E_CONFIG', `--cluster needs NATS URLs like nats://127.0.0.1:4222, got ${JSON.stringify(c)}`);
  if (w === undefined) return { servers, ...node };
  const wait = typeof w === 'string' && /^\d{1,9}$/.test(w) ? Number(w) : NaN;
  if (!(wait > 0)) throw new HotlineError('HOTLINE_E_CONFIG', `--cluster-wait must be a positive number of ms, got ${JSON.stringify(w)}`);
  return { servers, wait, ...node };
}
