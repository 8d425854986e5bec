/**
 * What a plugin holds for a link (issue 15): one handle per version that claimed it, so each version sees its own
 * `link.state` (the new version's, migrated, is committed when it becomes the dispatch target; the old one's writes
 * after the switch change nothing). Like ConnHandle, it holds no socket.
 */
import type { Link, LinkPhase, LinkStatus, MessageData } from '../plugin/contract.js';
import type { HostLink } from './link.js';

/** @internal A version's claim on a link: its handle and its view of the link's state. */
export interface LinkClaim {
  handle: LinkHandle;
  state: unknown;
}

export class LinkHandle implements Link {
  #link: HostLink;
  #claim: LinkClaim;

  constructor(link: HostLink, claim: LinkClaim) {
    this.#link = link;
    this.#claim = claim;
  }

  get name(): string {
    return this.#link.name;
  }

  get phase(): LinkPhase {
    return this.#link.phase;
  }

  get status(): LinkStatus {
    return this.#link.status();
  }

  get state(): unknown {
    return this.#claim.state;
  }

  set state(next: unknown) {
    this.#claim.state = next;
  }

  send(data: MessageData): void {
    this.#link.send(data);
  }

  close(): void {
    this.#link.close('closed by the plugin');
  }
}
