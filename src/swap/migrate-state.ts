/**
 * State migration, the one copy used by a swap (swapper.ts) and by the new worker of a process upgrade
 * (handoff/connection-adopt.ts): the global state through the plugin's `migrate` (bounded by hookTimeout), then each
 * opened connection's state through `migrateConnection`. Nothing is assigned here: the caller commits the result at
 * its switch, so a failure leaves every state as it was. Before this file the two copies differed, and the
 * upgrade's had no hookTimeout: a `migrate` that never settled hung the upgrade until the supervisor's ack timeout.
 */
import type { Connection } from '../connection/connection.js';
import { HotlineError, messageOf } from '../errors.js';
import type { PreviousVersion } from '../plugin/contract.js';
import { runHook } from './run-hook.js';
import type { Version } from './version.js';

export interface MigratedState {
  /** The new global state. */
  state: unknown;
  /** The new `conn.state` of each opened connection. */
  connStates: Array<[Connection, unknown]>;
}

/** Migrate `from` (the previous version's name and state) into `next`, for `connections`. */
export async function migrateState(next: Version, from: PreviousVersion, connections: Iterable<Connection>, hookTimeout: number): Promise<MigratedState> {
  const def = next.def;
  const state = def.migrate
    ? await runHook(next, () => def.migrate!(from, next.ctx), { name: 'migrate()', code: 'HOTLINE_E_MIGRATE', timeoutCode: 'HOTLINE_E_MIGRATE', timeoutMs: hookTimeout })
    : from.state;
  return { state, connStates: migrateConnectionStates(next, from, connections) };
}

/**
 * `migrateConnection` alone, for connections that move between two live versions (issue 12: a pinned version retired
 * at its max age, a canary promoted or rolled back): the target already serves with its own global state.
 */
export function migrateConnectionStates(next: Version, from: PreviousVersion, connections: Iterable<Connection>): Array<[Connection, unknown]> {
  const def = next.def;
  const connStates: Array<[Connection, unknown]> = [];
  for (const conn of connections) {
    if (!conn.opened) continue;
    if (!def.migrateConnection) {
      connStates.push([conn, conn.state]);
      continue;
    }
    try {
      connStates.push([conn, def.migrateConnection(conn.state, from)]);
    } catch (err) {
      next.mapError(err);
      throw new HotlineError('HOTLINE_E_MIGRATE_CONNECTION', `migrateConnection() threw for connection ${conn.id}: ${messageOf(err)}`, { cause: err });
    }
  }
  return connStates;
}
