/**
 * Start supervisor-fixture.ts in its own process and wait for its ready line: what the handoff tests that drive a
 * Supervisor directly (more listeners than the CLI has, a short ready timeout) share.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { HostTuning } from '../../src/config/tuning.js';
import type { ListenerSpec } from '../../src/handoff/protocol.js';

export interface SupervisorFixtureOptions {
  entry: string;
  admin: string;
  envFile: string;
  readyTimeoutMs: number;
  /** Default: one WebSocket and one TCP (lines) listener. */
  listen?: ListenerSpec[];
  /** issue 14: the supervisor's HTTP admin (`httpAddress` in the fixture then). */
  httpAdmin?: { listen: string; token?: string };
  /** Host tuning, as `--config` would give it (src/config/tuning.ts). */
  tuning?: HostTuning;
}

export interface SupervisorFixture {
  child: ChildProcess;
  pid: number;
  addresses: Array<{ transport: 'ws' | 'tcp'; host: string; port: number; tls: boolean }>;
  httpAdmin?: { host: string; port: number };
  /** Resolves once the process has exited. */
  exited: Promise<unknown>;
}

export async function startSupervisor(o: SupervisorFixtureOptions, timeoutMs = 30_000): Promise<SupervisorFixture> {
  const fixture = path.join(import.meta.dirname, 'supervisor-fixture.ts');
  const args = [fixture, o.entry, o.admin, o.envFile, String(o.readyTimeoutMs), ...(o.listen ? [JSON.stringify(o.listen)] : [])];
  const env = {
    ...process.env,
    ...(o.httpAdmin && { HOTLINE_TEST_HTTP_ADMIN: JSON.stringify(o.httpAdmin) }),
    ...(o.tuning && { HOTLINE_TEST_TUNING: JSON.stringify(o.tuning) }),
  };
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], { stdio: ['ignore', 'pipe', 'inherit'], env });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  let timer: NodeJS.Timeout | undefined;
  try {
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).once('line', resolve);
      child.once('exit', (code) => reject(new Error(`the supervisor exited with ${code}`)));
      timer = setTimeout(() => reject(new Error(`no ready line from the supervisor within ${timeoutMs} ms`)), timeoutMs);
    });
    const info = JSON.parse(line) as Pick<SupervisorFixture, 'pid' | 'addresses' | 'httpAdmin'>;
    return { child, exited, ...info };
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
