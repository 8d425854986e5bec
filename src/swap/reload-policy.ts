/**
 * issue 12: how a reload puts its new version in service. Validated here, once, for the API and the admin socket
 * alike: every field is checked, an unknown one is refused by name (HOTLINE_E_POLICY), never ignored.
 *
 * - `migrate` (the default): every connection moves to the new version with its state; the old one is disposed.
 * - `pin`: connections open now stay on the old version until they close; new ones get the new version. The old
 *   version is retired after its last connection, or at `maxAge`, when the rest migrate with their state.
 * - canary: a share of new connections (or those `match` picks) get the new version; its error rate is compared with
 *   the stable one's over `window`, then it is promoted (everyone migrates up) or rolled back (its connections
 *   migrate down, none closed).
 */
import type { Handshake } from '../connection/handshake.js';
import { HotlineError } from '../errors.js';

export type { Handshake } from '../connection/handshake.js';

/** The canary form of a reload policy. */
export interface CanaryPolicy {
  /** The share of new connections that get the new version, in (0, 1]. Ignored for those `match` decides. */
  canary: number;
  /** Pick the connections by their handshake instead of at random: true = canary. */
  match?: (handshake: Handshake) => boolean;
  /** How long the canary is judged, ms. Default 60 000. */
  window?: number;
  /** The error budget: how much the canary's error rate may exceed stable's over the window. Default 0.05. */
  maxErrorRate?: number;
  /** Errors before the budget is judged at all. Default 5. */
  minErrors?: number;
  /** At the end of a window within budget: `auto` promotes (default); `manual` waits for `hotline promote`. */
  promote?: 'auto' | 'manual';
}

/** The pin form with a maximum age. */
export interface PinPolicy {
  pin: true;
  /** ms after the switch at which the old version's remaining connections migrate and it retires. Default: never. */
  maxAge?: number;
}

/** `host.reload({ policy })`. */
export type ReloadPolicy = 'migrate' | 'pin' | PinPolicy | CanaryPolicy;

/** @internal A validated policy. */
export type Policy =
  | { kind: 'migrate' }
  | { kind: 'pin'; maxAge: number | undefined }
  | { kind: 'canary'; share: number; match: ((h: Handshake) => boolean) | undefined; window: number; maxErrorRate: number; minErrors: number; autoPromote: boolean };

export const DEFAULT_CANARY_WINDOW = 60_000;
export const DEFAULT_CANARY_MAX_ERROR_RATE = 0.05;
export const DEFAULT_CANARY_MIN_ERRORS = 5;
/** setTimeout's limit: a longer delay fires at once. */
const MAX_DELAY = 2 ** 31 - 1;

function refuse(message: string): never {
  throw new HotlineError('HOTLINE_E_POLICY', message);
}

function ms(name: string, v: unknown): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 1 || v > MAX_DELAY) refuse(`${name} must be a number of ms in [1, ${MAX_DELAY}]`);
  return Math.round(v);
}

/** @internal Validate a policy from the API or the admin socket; throws HOTLINE_E_POLICY naming the bad field. */
export function parsePolicy(p: unknown): Policy {
  if (p === undefined || p === 'migrate') return { kind: 'migrate' };
  if (p === 'pin') return { kind: 'pin', maxAge: undefined };
  if (p === null || typeof p !== 'object' || Array.isArray(p)) refuse(`policy must be 'migrate', 'pin', { pin: true, maxAge? } or { canary: share, … }, got ${typeof p === 'string' ? JSON.stringify(p.slice(0, 32)) : p === null ? 'null' : typeof p}`);
  const o = p as Record<string, unknown>;
  const keys = Object.keys(o);
  if ('pin' in o && 'canary' in o) refuse('a policy is pin or canary, not both');
  if ('pin' in o) {
    const extra = keys.find((k) => k !== 'pin' && k !== 'maxAge');
    if (extra !== undefined) refuse(`unknown pin field ${JSON.stringify(extra.slice(0, 32))}`);
    if (o.pin !== true) refuse('pin must be true');
    return { kind: 'pin', maxAge: ms('maxAge', o.maxAge) };
  }
  if (!('canary' in o)) refuse('a policy object needs `pin` or `canary`');
  const extra = keys.find((k) => !['canary', 'match', 'window', 'maxErrorRate', 'minErrors', 'promote'].includes(k));
  if (extra !== undefined) refuse(`unknown canary field ${JSON.stringify(extra.slice(0, 32))}`);
  const share = o.canary;
  if (typeof share !== 'number' || !Number.isFinite(share) || share <= 0 || share > 1) refuse('canary must be a share in (0, 1], e.g. 0.1 for 10%');
  if (o.match !== undefined && typeof o.match !== 'function') refuse('match must be a function of the handshake');
  const rate = o.maxErrorRate ?? DEFAULT_CANARY_MAX_ERROR_RATE;
  if (typeof rate !== 'number' || !Number.isFinite(rate) || rate < 0 || rate > 1) refuse('maxErrorRate must be a number in [0, 1]');
  const minErrors = o.minErrors ?? DEFAULT_CANARY_MIN_ERRORS;
  if (typeof minErrors !== 'number' || !Number.isSafeInteger(minErrors) || minErrors < 1) refuse('minErrors must be an integer >= 1');
  if (o.promote !== undefined && o.promote !== 'auto' && o.promote !== 'manual') refuse("promote must be 'auto' or 'manual'");
  return {
    kind: 'canary',
    share,
    match: o.match as ((h: Handshake) => boolean) | undefined,
    window: ms('window', o.window) ?? DEFAULT_CANARY_WINDOW,
    maxErrorRate: rate,
    minErrors,
    autoPromote: o.promote !== 'manual',
  };
}
