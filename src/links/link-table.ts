/**
 * The host's links, by name, and who claims them (issue 15). The rule that lets a swap keep a link:
 * - `ctx.link(name, options)` claims the link for the calling version, opening it if no version holds it yet. The
 *   same name with other options is refused (HOTLINE_E_LINK_OPTIONS): a new URL needs a new name.
 * - A version that claims a link the serving version holds gets the same live link, its state migrated through
 *   `migrateLink` (or carried as it is).
 * - When a version is retired (after the swap that replaced it, at an aborted swap, at shutdown) its claims are
 *   dropped, and a link that no version claims any more is closed. So a link the new version did not claim by the end
 *   of its init/migrate closes right after the swap; one it claimed stays open and never reconnects.
 *
 * One table per dispatch gate, found through `linksOf`, so the versions and the host reach it without a new
 * constructor argument threaded through the swapper.
 */
import { HotlineError } from '../errors.js';
import type { Link, LinkStatus, PreviousVersion } from '../plugin/contract.js';
import { HostLink, type LinkDeps, type LinkGate } from './link.js';
import { linkSpec } from './link-options.js';
import { connectLink } from './link-socket.js';

/** What the table needs of a claiming version. */
export interface LinkClaimant {
  readonly retired: boolean;
  readonly version: string;
  readonly state: unknown;
  readonly label: string;
  /** The plugin's migrateLink hook, if it has one. */
  migrateLink?(prevLinkState: unknown, prev: PreviousVersion): unknown;
}

export class LinkTable {
  #gate: LinkGate;
  #deps: LinkDeps;
  #links = new Map<string, HostLink>();

  constructor(gate: LinkGate, deps: LinkDeps) {
    this.#gate = gate;
    this.#deps = deps;
  }

  get size(): number {
    return this.#links.size;
  }

  get(name: string): HostLink | undefined {
    return this.#links.get(name);
  }

  /** `ctx.link(name, options)` from `owner`. See the file comment. */
  claim(owner: LinkClaimant, name: string, options: unknown): Link {
    if (owner.retired) throw new HotlineError('HOTLINE_E_LINK_CLOSED', `${owner.label} is retired: it cannot open link "${name}"`);
    const spec = linkSpec(name, options);
    const existing = this.#links.get(spec.name);
    if (existing && existing.phase === 'closed') this.#links.delete(spec.name);
    const link = this.#links.get(spec.name);
    if (!link) {
      const fresh = new HostLink(spec, this.#gate, this.#deps);
      this.#links.set(spec.name, fresh);
      return fresh.addClaim(owner, undefined);
    }
    if (link.spec.key !== spec.key) {
      throw new HotlineError('HOTLINE_E_LINK_OPTIONS', `link "${name}" is open with other options (${link.spec.url}); close it first, or use another name`);
    }
    const own = link.claimOf(owner);
    if (own) return own.handle;
    const from = link.currentClaim();
    let state = from?.claim.state;
    if (owner.migrateLink && from) {
      const prev = from.owner as Partial<LinkClaimant>;
      state = owner.migrateLink(state, { version: String(prev.version), state: prev.state });
    }
    return link.addClaim(owner, state);
  }

  /** A version was retired: drop its claims and close the links no version claims any more. */
  release(owner: object): void {
    for (const [name, link] of this.#links) {
      if (!link.claimOf(owner)) continue;
      if (link.dropClaim(owner)) {
        link.close(`no version claims link "${name}" any more`);
        this.#links.delete(name);
      }
    }
  }

  status(): LinkStatus[] {
    return [...this.#links.values()].map((l) => l.status());
  }

  /** Close every link (the host is shutting down). Idempotent. */
  closeAll(): void {
    for (const link of this.#links.values()) link.close('the host is shutting down');
    this.#links.clear();
  }
}

const tables = new WeakMap<object, LinkTable>();

/** Default side effects: real sockets, Math.random jitter, no logging unless the host sets one. */
export const defaultLinkDeps: LinkDeps = { connect: connectLink, random: Math.random, log: () => {} };

/** The link table of a dispatch gate, created at first use. `deps` only matters at that first call. */
export function linksOf(gate: LinkGate, deps: LinkDeps = defaultLinkDeps): LinkTable {
  let table = tables.get(gate);
  if (!table) {
    table = new LinkTable(gate, deps);
    tables.set(gate, table);
  }
  return table;
}
