/**
 * The rig of the hostile-input tests: a real `hotline start` (supervisor + worker process), an unrelated client that
 * pings every 50 ms, and the checks every case makes afterwards: same supervisor PID, same worker PID, every ping
 * answered. Run `npm run build` first when running one of these files alone (the bin runs dist/).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { adminStatus, HotlineProcess, type ReadyLine } from '../e2e/hotline-process.js';
import { type PluginDir, pluginDir } from '../helpers/plugin-dir.js';
import { Pinger, waitUntil } from './hostile-rig.js';

export const ECHO_PLUGIN = `
import { definePlugin } from 'hotline';
export default definePlugin({
  name: 'echo', version: '1.0.0', api: 1,
  init: () => ({}),
  onMessage(conn, data) { conn.send(data); },
});
`;

interface Status {
  supervisor: { pid: number; workerPid: number };
}

export interface AttackRig {
  proc: HotlineProcess;
  ready: ReadyLine;
  plugin: PluginDir;
  admin: string;
  pinger: Pinger;
  /** Assert the supervisor and its worker are the processes they were at the start, and the pinger lost nothing. */
  survived(): Promise<void>;
  close(): Promise<void>;
}

/** Start `hotline start <plugin> ...extraArgs` (an echo plugin by default) and a pinger against it. */
export async function underAttack(extraArgs: string[] = [], source = ECHO_PLUGIN): Promise<AttackRig> {
  const plugin = pluginDir(source);
  const admin = path.join(plugin.dir, 'admin.sock');
  const { proc, ready } = await HotlineProcess.start(['start', plugin.entry, '--port', '0', '--admin', admin, ...extraArgs], plugin.dir);
  const before = await adminStatus<Status>(admin, plugin.dir);
  const pinger = await Pinger.start(ready.url);
  // A few pings before the attack, so "every reply" covers the time around it.
  await waitUntil(() => pinger.received >= 3, 10_000, 'the first pings');
  return {
    proc,
    ready,
    plugin,
    admin,
    pinger,
    async survived() {
      await pinger.stopAndCheck();
      assert.equal(proc.child.exitCode, null, 'the supervisor is still running');
      const after = await adminStatus<Status>(admin, plugin.dir);
      assert.equal(after.supervisor.pid, before.supervisor.pid, 'same supervisor PID');
      assert.equal(after.supervisor.workerPid, before.supervisor.workerPid, 'same worker PID: the worker never restarted');
    },
    async close() {
      pinger.close();
      proc.kill('SIGTERM');
      await proc.exited;
      plugin.remove();
    },
  };
}

