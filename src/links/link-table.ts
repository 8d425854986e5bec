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
 * A process upgrade (issue 15) keeps the same rule across processes. The new process's table is deferred until the
 * commit (`defer`): links its version claims do not connect yet, and the links the old process hands over are
 * adopted by name (`adopt`). A claim with the same name and options gets the adopted live link; an adopted link that
 * no version claimed by the end of init/migrate closes at the commit (`commit`), and one claimed that did not arrive
 * connects then.
 *
 * One table per dispatch gate, found through `linksOf`, so the versions and the host reach it without a new
 * constructor argument threaded through the swapper.
 */
import { HotlineError } from '../errors.js';
import type { Link, LinkStatus, PreviousVersion } from '../plugin/contract.js';
import { HostLink, type LinkDeps, type LinkGate, type LinkSnapshot } from './link.js';
import { linkSpec, specOfKey } from './link-options.js';
import { type AdoptedWire, adoptLinkSocket, connectLink } from './link-socket.js';

/** One link handed over by the old process, checked (src/handoff/link-adopt.ts). */
export interface LinkArrival {
  name: string;
  /** The options' identity (link-options.ts), as the old process had them. */
  key: string;
  snapshot: LinkSnapshot;
  /** The moved socket and the bytes already read of a frame; absent when only the state moved (`reason` says why). */
  wire?: AdoptedWire & { head: Buffer };
  reason?: string;
}

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
  /** The new process of an upgrade, until the commit (see the file comment). */
  #deferred = false;
  /** Adopted links whose name a version of this process already holds with other options: closed at the commit. */
  #displaced: HostLink[] = [];
  /** Names adopted during this upgrade: a name twice is refused. */
  #adopted = new Set<string>();

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
      const fresh = new HostLink(spec, this.#gate, this.#deps, this.#deferred);
      this.#links.set(spec.name, fresh);
      return fresh.addClaim(owner, undefined);
    }
    if (link.spec.key !== spec.key) {
      throw new HotlineError('HOTLINE_E_LINK_OPTIONS', `link "${name}" is open with other options (${link.spec.url}); close it first, or use another name`);
    }
    const own = link.claimOf(owner);
    if (own) return own.handle;
    const from = link.currentClaim();
    // An adopted link nobody here claimed yet starts from what the old process carried (migrateLink runs once the
    // old process's global state is here: migrateAdopted).
    if (!from && link.carried) return link.addClaim(owner, link.carried.state);
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

  /** Every link (a process upgrade exports them). */
  links(): HostLink[] {
    return [...this.#links.values()];
  }

  /** Forget a link the new process of an upgrade owns now (HostLink#letGo did the rest). */
  forget(link: HostLink): void {
    if (this.#links.get(link.name) === link) this.#links.delete(link.name);
  }

  // ── the new process of an upgrade (see the file comment) ──

  /** From now until commit(), links do not connect and sends only queue. Set before the plugin's init runs. */
  defer(): void {
    this.#deferred = true;
  }

  get deferred(): boolean {
    return this.#deferred;
  }

  /**
   * Take a link the old process handed over. Throws HOTLINE_E_LINK_ADOPT for a name that already arrived; nothing
   * connects, reads or writes before commit().
   */
  adopt(a: LinkArrival): void {
    if (!this.#deferred) throw new HotlineError('HOTLINE_E_LINK_ADOPT', `link "${a.name}" arrived after the commit`);
    if (this.#adopted.has(a.name)) throw new HotlineError('HOTLINE_E_LINK_ADOPT', `link "${a.name}" arrived twice`);
    const spec = specOfKey(a.name, a.key);
    this.#adopted.add(a.name);
    const held = this.#links.get(a.name);
    let link: HostLink;
    if (held && held.spec.key === spec.key && held.deferred && held.phase !== 'closed') {
      link = held;
    } else {
      link = new HostLink(spec, this.#gate, this.#deps, true);
      // Claimed here under other options (a new URL in the new build): the old one is not this version's link.
      if (held) this.#displaced.push(link);
      else this.#links.set(a.name, link);
    }
    const wire = a.wire;
    if (wire) link.adopt(a.snapshot, { make: (events) => adoptLinkSocket(spec, events, wire), head: wire.head });
    else link.adopt(a.snapshot, { reason: a.reason ?? 'not moved' });
  }

  /**
   * After the new version's migrate: each adopted link it claimed gets its state through `migrateLink`, with the
   * old process's version and global state, as a swap gives it. Throws what the hook throws (the upgrade aborts).
   */
  migrateAdopted(owner: LinkClaimant, prev: PreviousVersion): void {
    if (!owner.migrateLink) return;
    for (const link of this.#links.values()) {
      const claim = link.carried && link.claimOf(owner);
      if (claim) claim.state = owner.migrateLink(claim.state, prev);
    }
  }

  /** The upgrade committed: close the adopted links nobody claimed, start the rest. */
  commit(): void {
    if (!this.#deferred) return;
    this.#deferred = false;
    for (const link of this.#displaced) link.close(`link "${link.name}" is open here with other options`);
    this.#displaced = [];
    for (const [name, link] of this.#links) {
      if (link.carried && !link.currentClaim()) {
        link.close(`no version claims link "${name}" after the upgrade`);
        this.#links.delete(name);
      } else {
        link.start();
      }
    }
    this.#adopted.clear();
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
