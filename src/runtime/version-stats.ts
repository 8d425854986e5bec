/**
 * What status says of a version, in a file of its own: the public types (HostStatus, the host options) name these,
 * and must not pull the runtime's Connection, and with it ws' types, into a user's type check.
 */

/** Where a version's code runs. */
export type Isolation = 'inline' | 'worker';

/** Counters kept per version, shown in status. */
export interface VersionStats {
  seq: number;
  name: string;
  version: string;
  hash: string;
  loadedAt: number;
  messages: number;
  errors: number;
  lastError?: { code: string; message: string };
  /** issue 11: where the version ran. Absent in records of an older build. */
  isolation?: Isolation;
}
