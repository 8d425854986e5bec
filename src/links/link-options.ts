/**
 * A link's options, checked and normalised once (issue 15). Two calls of `ctx.link(name, …)` name the same link only
 * if their normalised options are equal (`key`): a swap keeps a link by asking for it again the same way.
 */
import { HotlineError, messageOf } from '../errors.js';
import type { LinkOptions } from '../plugin/contract.js';

export type LinkScheme = 'tcp' | 'tls' | 'ws' | 'wss';

/** Everything a link needs to connect, with every default filled in. */
export interface LinkSpec {
  name: string;
  url: string;
  scheme: LinkScheme;
  host: string;
  port: number;
  framing: 'lines' | 'length';
  maxPayload: number;
  maxQueuedSends: number;
  maxQueuedBytes: number;
  initialDelay: number;
  maxDelay: number;
  connectTimeout: number;
  ca: string[] | undefined;
  servername: string | undefined;
  /** The identity of these options: equal keys, same link. */
  key: string;
}

export const LINK_DEFAULTS = {
  framing: 'lines',
  maxPayload: 1024 * 1024,
  maxQueuedSends: 1000,
  maxQueuedBytes: 1024 * 1024,
  initialDelay: 100,
  maxDelay: 5000,
  connectTimeout: 5000,
} as const;

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const SCHEMES: ReadonlySet<string> = new Set(['tcp', 'tls', 'ws', 'wss']);
const DEFAULT_PORT: Record<string, number> = { ws: 80, wss: 443 };

function fail(name: string, why: string): never {
  throw new HotlineError('HOTLINE_E_LINK_OPTIONS', `link "${name}": ${why}`);
}

function positiveInt(name: string, field: string, v: unknown, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) fail(name, `${field} must be a positive integer, got ${String(v)}`);
  return v;
}

/** Check `options` for the link `name`. Throws HOTLINE_E_LINK_OPTIONS naming the wrong field. */
export function linkSpec(name: unknown, options: unknown): LinkSpec {
  if (typeof name !== 'string' || !NAME.test(name)) {
    fail(String(name), 'the name must be 1-100 characters of letters, digits, ".", "_" and "-", starting with a letter or digit');
  }
  if (typeof options !== 'object' || options === null) fail(name, 'options must be an object with a url');
  const o = options as LinkOptions;
  if (typeof o.url !== 'string') fail(name, 'url must be a string such as tcp://127.0.0.1:7000');
  let u: URL;
  try {
    u = new URL(o.url);
  } catch {
    fail(name, `url "${o.url}" does not parse`);
  }
  const scheme = u.protocol.replace(/:$/, '');
  if (!SCHEMES.has(scheme)) fail(name, `url scheme "${scheme}" is not one of tcp, tls, ws, wss`);
  const port = u.port === '' ? DEFAULT_PORT[scheme] : Number(u.port);
  if (port === undefined || !Number.isInteger(port) || port < 1 || port > 65535) fail(name, `url "${o.url}" needs a port`);
  if (u.hostname === '') fail(name, `url "${o.url}" needs a host`);
  const stream = scheme === 'tcp' || scheme === 'tls';
  if (o.framing !== undefined && (!stream || (o.framing !== 'lines' && o.framing !== 'length'))) {
    fail(name, stream ? `framing must be "lines" or "length", got ${String(o.framing)}` : 'framing applies to tcp:// and tls:// only (WebSocket frames itself)');
  }
  if (stream && u.pathname !== '' && u.pathname !== '/') fail(name, `a ${scheme}:// url has no path`);
  const ca = o.ca === undefined ? undefined : Array.isArray(o.ca) ? o.ca : [o.ca];
  if (ca && !ca.every((c) => typeof c === 'string')) fail(name, 'ca must be PEM text or an array of it');
  if (o.servername !== undefined && typeof o.servername !== 'string') fail(name, 'servername must be a string');
  const spec: Omit<LinkSpec, 'key'> = {
    name,
    url: o.url,
    scheme: scheme as LinkScheme,
    // URL keeps the brackets of an IPv6 literal; net.connect wants it bare.
    host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
    port,
    framing: o.framing ?? LINK_DEFAULTS.framing,
    maxPayload: positiveInt(name, 'maxPayload', o.maxPayload, LINK_DEFAULTS.maxPayload),
    maxQueuedSends: positiveInt(name, 'maxQueuedSends', o.maxQueuedSends, LINK_DEFAULTS.maxQueuedSends),
    maxQueuedBytes: positiveInt(name, 'maxQueuedBytes', o.maxQueuedBytes, LINK_DEFAULTS.maxQueuedBytes),
    initialDelay: positiveInt(name, 'backoff.initialDelay', o.backoff?.initialDelay, LINK_DEFAULTS.initialDelay),
    maxDelay: positiveInt(name, 'backoff.maxDelay', o.backoff?.maxDelay, LINK_DEFAULTS.maxDelay),
    connectTimeout: positiveInt(name, 'connectTimeout', o.connectTimeout, LINK_DEFAULTS.connectTimeout),
    ca,
    servername: o.servername,
  };
  if (spec.maxDelay < spec.initialDelay) fail(name, 'backoff.maxDelay must be at least backoff.initialDelay');
  return { ...spec, key: JSON.stringify(spec) };
}

/** Bound on a key from another process (options with CA certificates run to a few KB). */
const MAX_KEY_CHARS = 1024 * 1024;

/**
 * The spec whose key is `key`, from a process upgrade's transfer (src/handoff/link-transfer.ts): read back through
 * linkSpec, so a key from another process is held to every check a plugin's options are, and must come out the same.
 * Throws HOTLINE_E_LINK_ADOPT.
 */
export function specOfKey(name: unknown, key: unknown): LinkSpec {
  const refuse = (why: string, cause?: unknown): never => {
    throw new HotlineError('HOTLINE_E_LINK_ADOPT', `link "${String(name).slice(0, 100)}": ${why}`, cause === undefined ? undefined : { cause });
  };
  if (typeof key !== 'string' || key.length > MAX_KEY_CHARS) return refuse('its options are not a string of at most 1 MiB');
  let s: Record<string, unknown>;
  try {
    s = JSON.parse(key) as Record<string, unknown>;
  } catch (err) {
    return refuse('its options are not JSON', err);
  }
  if (s === null || typeof s !== 'object' || Array.isArray(s)) return refuse('its options are not an object');
  const stream = s.scheme === 'tcp' || s.scheme === 'tls';
  let spec: LinkSpec;
  try {
    spec = linkSpec(name, {
      url: s.url,
      ...(stream && { framing: s.framing }),
      maxPayload: s.maxPayload,
      maxQueuedSends: s.maxQueuedSends,
      maxQueuedBytes: s.maxQueuedBytes,
      backoff: { initialDelay: s.initialDelay, maxDelay: s.maxDelay },
      connectTimeout: s.connectTimeout,
      ...(s.ca !== undefined && { ca: s.ca }),
      ...(s.servername !== undefined && { servername: s.servername }),
    });
  } catch (err) {
    return refuse(messageOf(err), err);
  }
  if (spec.key !== key) refuse('its options do not read back as they were sent');
  return spec;
}
