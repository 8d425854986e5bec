/**
 * The one host-level operation lock: at most one of swap, export (the old worker's side of an upgrade), adopt (the
 * new worker's side) and shutdown runs at a time. Before it, each of them suspended dispatch through one shared
 * boolean, so a swap that landed during an export resumed dispatch in the old worker while its connections moved
 * (issue 10, fault 6). Modelled on cloudflare/tableflip's upgrader: a concurrent request is refused by name, or
 * waits with a real timeout, by one rule table (RULES below), never interleaved by accident.
 *
 * | requested \ held | swap                 | export / adopt                  | shutdown             |
 * |------------------|----------------------|---------------------------------|----------------------|
 * | swap             | waits                | refused UPGRADE_IN_PROGRESS     | refused SWAP_CLOSED  |
 * | export           | waits (bounded)      | refused UPGRADE_IN_PROGRESS     | refused SWAP_CLOSED  |
 * | adopt            | refused UPGRADE_REFUSED | refused UPGRADE_IN_PROGRESS  | refused SWAP_CLOSED  |
 * | shutdown         | waits, then takes it | waits, then takes it            | waits                |
 *
 * A wait that outlives its bound rejects with HOTLINE_E_OPERATION_TIMEOUT naming the holder, except a shutdown's,
 * which takes the lock anyway: a stop must stop, and the holder's later release is then a no-op.
 */
import { type ErrorCode, HotlineError } from '../errors.js';

/** What can hold the lock. */
export type OperationName = 'swap' | 'export' | 'adopt' | 'shutdown';

/** The lock's state, as `hotline status` shows it. */
export type LockState =
  | { phase: 'free'; refused: number }
  | { phase: 'held'; holder: OperationName; sinceMs: number; waiting: number; refused: number };

/** A granted lock. `release()` is idempotent, and a no-op once a shutdown took the lock over. */
export interface OperationHold {
  readonly name: OperationName;
  release(): void;
}

type Rule = { wait: true } | { refuse: ErrorCode; why: string };

const WAIT: Rule = { wait: true };

function refuse(code: ErrorCode, why: string): Rule {
  return { refuse: code, why };
}

/** RULES[requested][held]: what a request meets when another operation holds the lock. */
const RULES: Record<OperationName, Record<OperationName, Rule>> = {
  swap: {
    swap: WAIT,
    export: refuse('HOTLINE_E_UPGRADE_IN_PROGRESS', 'a process upgrade is moving the connections; reload after it'),
    adopt: refuse('HOTLINE_E_UPGRADE_IN_PROGRESS', 'this worker is taking the connections of an upgrade; reload after it'),
    shutdown: refuse('HOTLINE_E_SWAP_CLOSED', 'the host is shutting down'),
  },
  export: {
    swap: WAIT,
    export: refuse('HOTLINE_E_UPGRADE_IN_PROGRESS', 'an export is already running'),
    adopt: refuse('HOTLINE_E_UPGRADE_IN_PROGRESS', 'this worker is still adopting connections'),
    shutdown: refuse('HOTLINE_E_SWAP_CLOSED', 'the host is shutting down'),
  },
  adopt: {
    // The adopter suspends dispatch synchronously as the first connection arrives: it cannot wait.
    swap: refuse('HOTLINE_E_UPGRADE_REFUSED', 'a swap is running in the new worker'),
    export: refuse('HOTLINE_E_UPGRADE_IN_PROGRESS', 'this worker is exporting'),
    adopt: refuse('HOTLINE_E_UPGRADE_IN_PROGRESS', 'an adoption is already running'),
    shutdown: refuse('HOTLINE_E_SWAP_CLOSED', 'the host is shutting down'),
  },
  shutdown: { swap: WAIT, export: WAIT, adopt: WAIT, shutdown: WAIT },
};

interface Waiter {
  name: OperationName;
  grant(): void;
  refuse(err: HotlineError): void;
}

/** Injected clock, so the state's `sinceMs` can be read in tests. */
export interface OperationLockDeps {
  now(): number;
}

export class OperationLock {
  #holder: { name: OperationName; since: number; token: object } | undefined;
  #waiters: Waiter[] = [];
  #refused = 0;
  #deps: OperationLockDeps;

  constructor(deps: OperationLockDeps = { now: Date.now }) {
    this.#deps = deps;
  }

  /** The operation holding the lock now, if any. */
  get holder(): OperationName | undefined {
    return this.#holder?.name;
  }

  get state(): LockState {
    const h = this.#holder;
    if (!h) return { phase: 'free', refused: this.#refused };
    return { phase: 'held', holder: h.name, sinceMs: this.#deps.now() - h.since, waiting: this.#waiters.length, refused: this.#refused };
  }

  /**
   * Throw the refusal `name` would meet now, if any: for a request that must be refused at once rather than queued
   * (a reload during an upgrade answers HOTLINE_E_UPGRADE_IN_PROGRESS, it does not wait behind it).
   */
  check(name: OperationName): void {
    const rule = this.#ruleNow(name);
    if (rule && 'refuse' in rule) throw this.#refusal(name, rule);
  }

  /** Take the lock now or throw: the refusal by name, or HOTLINE_E_OPERATION_TIMEOUT if the rule says wait. */
  tryAcquire(name: OperationName): OperationHold {
    const rule = this.#ruleNow(name);
    if (!rule) return this.#grant(name);
    if ('refuse' in rule) throw this.#refusal(name, rule);
    this.#refused++;
    throw new HotlineError('HOTLINE_E_OPERATION_TIMEOUT', `${name} cannot wait: ${this.#holder!.name} holds the host's operation lock`);
  }

  /**
   * Take the lock, waiting up to `timeoutMs` where the rules say wait. Rejects with the refusal by name, or
   * HOTLINE_E_OPERATION_TIMEOUT after the bound; a shutdown takes the lock at the bound instead.
   */
  acquire(name: OperationName, timeoutMs: number): Promise<OperationHold> {
    const rule = this.#ruleNow(name);
    if (!rule) return Promise.resolve(this.#grant(name));
    if ('refuse' in rule) return Promise.reject(this.#refusal(name, rule));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        name,
        grant: () => {
          clearTimeout(timer);
          resolve(this.#grant(name));
        },
        refuse: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        const holder = this.#holder?.name ?? 'nothing';
        if (name === 'shutdown') {
          // The holder's release() becomes a no-op: its token is no longer the holder's.
          resolve(this.#grant(name));
          return;
        }
        this.#refused++;
        reject(new HotlineError('HOTLINE_E_OPERATION_TIMEOUT', `${name} waited ${timeoutMs} ms for the running ${holder} to finish`));
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  #ruleNow(name: OperationName): Rule | undefined {
    const h = this.#holder;
    return h ? RULES[name][h.name] : undefined;
  }

  #refusal(name: OperationName, rule: { refuse: ErrorCode; why: string }): HotlineError {
    this.#refused++;
    return new HotlineError(rule.refuse, `${name} refused: ${rule.why}`);
  }

  #grant(name: OperationName): OperationHold {
    const token = {};
    this.#holder = { name, since: this.#deps.now(), token };
    return {
      name,
      release: () => {
        if (this.#holder?.token !== token) return;
        this.#holder = undefined;
        this.#next();
      },
    };
  }

  /** The lock is free: grant it to the first waiter, then hold every other waiter to the rule against it. */
  #next(): void {
    const first = this.#waiters.shift();
    if (!first) return;
    first.grant();
    const waiting = this.#waiters;
    this.#waiters = [];
    for (const w of waiting) {
      const rule = this.#ruleNow(w.name)!;
      if ('refuse' in rule) w.refuse(this.#refusal(w.name, rule));
      else this.#waiters.push(w);
    }
  }
}
