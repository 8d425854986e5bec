/**
 * What a plugin holds for a connection: the documented `Conn` members and nothing else. The host's `Connection`
 * (its link to the socket, its queue, detach/receive/pump) sits behind a `#private` field that no plugin code can
 * name, walk to or enumerate (DESIGN.md §1: sockets belong to the host).
 *
 * One handle per connection, made when the connection is, so a plugin sees the same object in every hook, in
 * `ctx.connections` and in a broadcast filter, and can key a Map or WeakMap by it; and nothing is allocated per
 * message. Each member is one forwarding call: a later worker mode gives plugins a proxy with this same surface.
 *
 * The prototype and each handle are frozen: plugins share the host's realm, so one version patching
 * `send` on the prototype would otherwise see every other version's traffic, and an expando property would silently
 * survive swaps but not an upgrade. Per-connection data goes in `state`.
 */
import type { MessageData, TransportKind, Conn } from './contract.js';

/** The part of the host's connection a handle forwards to. */
export interface HandleTarget {
  readonly id: string;
  readonly transport: TransportKind;
  readonly remoteAddress: string;
  state: unknown;
  send(data: MessageData): boolean;
  close(code?: number, reason?: string): void;
  join(room: string): boolean;
  leave(room: string): boolean;
}

export class ConnHandle implements Conn {
  #target: HandleTarget;

  constructor(target: HandleTarget) {
    this.#target = target;
    Object.freeze(this);
  }

  get id(): string {
    return this.#target.id;
  }

  get transport(): TransportKind {
    return this.#target.transport;
  }

  get remoteAddress(): string {
    return this.#target.remoteAddress;
  }

  get state(): unknown {
    return this.#target.state;
  }

  set state(next: unknown) {
    this.#target.state = next;
  }

  send(data: MessageData): boolean {
    return this.#target.send(data);
  }

  close(code?: number, reason?: string): void {
    this.#target.close(code, reason);
  }

  join(room: string): boolean {
    return this.#target.join(room);
  }

  leave(room: string): boolean {
    return this.#target.leave(room);
  }
}

Object.freeze(ConnHandle.prototype);
Object.freeze(ConnHandle);
