/**
 * One NATS connection of a node, and what hotline knows about its health. The NATS client reconnects by itself, but
 * with two traps (DESIGN.md §9): its default `maxReconnectAttempts` is 10, after which it gives up for good, and
 * whatever is published while it is disconnected is dropped without an error. So this module always connects with
 * `maxReconnectAttempts: -1`, follows the client's status events, and tells its users whether the link is `up` or
 * `degraded` right now: a user that must not lose a write checks the state first instead of trusting the client.
 *
 *   connecting ──connected──► up ◄──reconnect── degraded
 *        │                     └──disconnect──────►┘
 *        └─(atStart 'fail': first connect failed, or 'wait': waitTimeout passed)─► HOTLINE_E_CLUSTER_UNAVAILABLE
 *   any ──close()──► closed
 *
 * Shared by the NATS session store and, later, the cluster bus and presence: one connection per node.
 */
import { connect as natsConnect, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node';
import { HotlineError, messageOf } from '../errors.js';

export type NatsLinkState = 'connecting' | 'up' | 'degraded' | 'closed';

export interface NatsLinkOptions {
  /** NATS server URLs, e.g. `nats://127.0.0.1:4222`. */
  servers: string | string[];
  /** The client name the server shows (monitoring). */
  name?: string;
  /**
   * NATS unreachable when the node starts: `'fail'` (default) refuses to start with HOTLINE_E_CLUSTER_UNAVAILABLE;
   * `'wait'` keeps trying until `waitTimeout`.
   */
  atStart?: 'fail' | 'wait';
  /** With `atStart: 'wait'`: how long to wait for NATS before failing, in ms. Default 60 000. */
  waitTimeout?: number;
  /** One connect attempt's timeout, in ms. Default 2 000. */
  connectTimeout?: number;
  /**
   * Do not receive this connection's own publishes on its own subscriptions. The cluster bus sets it: a node has
   * already delivered its own room messages locally, and the echo would double its inbound traffic.
   */
  noEcho?: boolean;
}

/** What the link does to the world: the NATS client's connect (a fake in unit tests). */
export interface NatsLinkDeps {
  connect(options: NodeConnectionOptions): Promise<NatsConnection>;
}

const realDeps: NatsLinkDeps = { connect: natsConnect };

/** Pause between first-connect attempts with `atStart: 'wait'`. */
const RETRY_MS = 250;

export interface NatsLinkStatus {
  state: NatsLinkState;
  servers: string[];
  /** Times the link went from up to degraded since it opened. */
  disconnects: number;
  /** Ms the link has been degraded, 0 when up. */
  degradedFor: number;
}

type Listener = (state: NatsLinkState) => void;

/**
 * A node's NATS connection. Open it with {@link NatsLink.open}; `state` says whether NATS is reachable now.
 *
 * @example
 * const link = await NatsLink.open({ servers: 'nats://127.0.0.1:4222' });
 * link.onState((s) => console.log('nats is', s));
 * await link.close();
 */
export class NatsLink {
  readonly nc: NatsConnection;
  readonly servers: string[];
  #state: NatsLinkState = 'up';
  #disconnects = 0;
  #degradedSince = 0;
  #listeners = new Set<Listener>();
  #watching: Promise<void>;

  private constructor(nc: NatsConnection, servers: string[]) {
    this.nc = nc;
    this.servers = servers;
    this.#watching = this.#watch();
  }

  /** Connect, following `atStart`. Rejects with HOTLINE_E_CLUSTER_UNAVAILABLE when NATS cannot be reached. */
  static async open(o: NatsLinkOptions, deps: NatsLinkDeps = realDeps): Promise<NatsLink> {
    const servers = (Array.isArray(o.servers) ? o.servers : [o.servers]).map((s) => s.trim()).filter((s) => s.length > 0);
    if (servers.length === 0) throw new HotlineError('HOTLINE_E_CONFIG', 'NATS servers: give at least one URL, e.g. nats://127.0.0.1:4222');
    const wait = o.atStart === 'wait';
    const waitTimeout = o.waitTimeout ?? 60_000;
    const options: NodeConnectionOptions = {
      servers,
      name: o.name,
      // The client's default of 10 gives up for good after a short outage.
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      timeout: o.connectTimeout ?? 2_000,
      ...(o.noEcho === true && { noEcho: true }),
    };
    // Waiting is our own loop of single attempts rather than the client's waitOnFirstConnect: that one cannot be
    // cancelled before it connects, so a node that gave up would keep dialling forever.
    const deadline = Date.now() + (wait ? waitTimeout : 0);
    for (let attempt = 1; ; attempt++) {
      try {
        return new NatsLink(await deps.connect(options), servers);
      } catch (err) {
        if (Date.now() + RETRY_MS >= deadline) {
          const waited = wait ? ` (waited ${waitTimeout} ms, ${attempt} attempts)` : '';
          throw new HotlineError('HOTLINE_E_CLUSTER_UNAVAILABLE', `cannot reach NATS at ${servers.join(', ')}${waited}: ${messageOf(err)}`, { cause: err });
        }
        await new Promise((r) => setTimeout(r, RETRY_MS));
      }
    }
  }

  get state(): NatsLinkState {
    return this.#state;
  }

  status(): NatsLinkStatus {
    return {
      state: this.#state,
      servers: this.servers,
      disconnects: this.#disconnects,
      degradedFor: this.#state === 'degraded' ? Date.now() - this.#degradedSince : 0,
    };
  }

  /** Call `fn` at every state change; returns the function that removes it. */
  onState(fn: Listener): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Idempotent: drains nothing (callers flush first), closes the connection, ends the status loop. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#set('closed');
    await this.nc.close().catch(() => undefined);
    await this.#watching;
  }

  async #watch(): Promise<void> {
    try {
      for await (const s of this.nc.status()) {
        if (this.#state === 'closed') break;
        if (s.type === 'disconnect' || s.type === 'staleConnection') this.#set('degraded');
        else if (s.type === 'reconnect') this.#set('up');
        else if (s.type === 'close') this.#set('closed');
      }
    } catch {
      // The iterator ends with the connection; its state is already 'closed' or will be by close().
    }
  }

  #set(state: NatsLinkState): void {
    if (state === this.#state) return;
    if (state === 'degraded') {
      this.#disconnects++;
      this.#degradedSince = Date.now();
    }
    this.#state = state;
    for (const fn of this.#listeners) fn(state);
  }
}
