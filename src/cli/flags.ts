/**
 * The flags `hotline start` and `hotline dev` share, checked once for both the in-process host (dev) and the
 * supervised one (start): bad values are coded errors before anything listens.
 */
import { chmodSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { defaultAdminPath } from '../admin/protocol.js';
import { HotlineError } from '../errors.js';
import type { FramingKind } from '../framing/framing.js';
import { type TlsOptions, loadTls } from '../transport/tls.js';

export interface StartFlags {
  port?: string;
  host?: string;
  transport?: string;
  framing?: string;
  watch?: boolean;
  admin?: string;
  static?: string;
  /** Resumable sessions for hotline/client, kept in a file store beside the admin socket (.hotline/sessions). */
  sessions?: boolean;
  /** Checkpoint the plugin's global state in this folder (default with --sessions: .hotline/state). */
  state?: string;
  /** Supervised start only: environment re-read at every worker start. */
  'env-file'?: string;
  /** PEM certificate and key: the listener speaks TLS (wss://, tls://). Both or neither. */
  'tls-cert'?: string;
  'tls-key'?: string;
  /** A JSON file of limits and timeouts (tuning.ts); the tunable flags (`--max-payload N`, ...) override it. */
  config?: string;
  'no-probation'?: boolean;
  /** The tunable flags of tuning.ts, by name. */
  [tunable: string]: string | boolean | undefined;
}

/** The listener the flags describe. */
export interface ListenFlags {
  transport: 'ws' | 'tcp';
  framing: FramingKind;
  host: string;
  port: number;
  /** Absolute folder to serve on the WebSocket port, if any. */
  static: string | undefined;
  /** Absolute PEM paths, checked readable and matching. */
  tls: TlsOptions | undefined;
}

export function parseListenFlags(flags: StartFlags): ListenFlags {
  const transport = flags.transport ?? 'ws';
  if (transport !== 'ws' && transport !== 'tcp') throw new HotlineError('HOTLINE_E_CONFIG', `--transport must be ws or tcp, got "${transport}"`);
  const framing = flags.framing ?? 'lines';
  if (framing !== 'lines' && framing !== 'length') throw new HotlineError('HOTLINE_E_CONFIG', `--framing must be lines or length, got "${framing}"`);
  if (flags.static && transport !== 'ws') throw new HotlineError('HOTLINE_E_CONFIG', '--static needs --transport ws');
  const portText = flags.port ?? '8080';
  // Digits only: Number('') is 0 and Number('0x50') is 80, neither of which the user meant.
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 0 && port <= 65535)) throw new HotlineError('HOTLINE_E_CONFIG', `--port must be 0..65535, got "${portText}"`);
  return {
    transport,
    framing,
    host: flags.host ?? '127.0.0.1',
    port,
    static: flags.static ? path.resolve(flags.static) : undefined,
    tls: parseTlsFlags(flags),
  };
}

function parseTlsFlags(flags: StartFlags): TlsOptions | undefined {
  const cert = flags['tls-cert'];
  const key = flags['tls-key'];
  if (cert === undefined && key === undefined) return undefined;
  if (!cert || !key) throw new HotlineError('HOTLINE_E_TLS_CONFIG', `--tls-cert and --tls-key go together; got only ${cert ? '--tls-cert' : '--tls-key'}`);
  const tls = { cert: path.resolve(cert), key: path.resolve(key) };
  loadTls(tls, '--tls-cert/--tls-key');
  return tls;
}

/** The absolute admin socket path. The default folder (.hotline) is made private (0700) even if it existed wider. */
export function resolveAdminPath(flag: string | undefined): string {
  const admin = path.resolve(flag ?? defaultAdminPath());
  if (!flag) {
    const dir = path.dirname(admin);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
  }
  return admin;
}

/** Where `--sessions` keeps the file session store: beside the admin socket. */
export function sessionsDir(admin: string): string {
  return path.join(path.dirname(admin), 'sessions');
}

/**
 * Where the global state is checkpointed (issue 11): `--state DIR`, else with `--sessions` beside the session store
 * (a durable session store makes the sessions outlive a crash; the checkpoints make the plugin's state outlive it
 * too), else nowhere.
 */
export function stateDir(flags: StartFlags, admin: string): string | undefined {
  if (flags.state !== undefined) {
    if (typeof flags.state !== 'string' || flags.state.length === 0) throw new HotlineError('HOTLINE_E_CONFIG', '--state needs a folder, e.g. --state .hotline/state');
    return path.resolve(flags.state);
  }
  return flags.sessions === true ? path.join(path.dirname(admin), 'state') : undefined;
}
