/**
 * Child processes for the benches: every server and every load generator runs in its own process, so the figures
 * are not a single event loop measuring itself. Helpers to fork a TypeScript file, await one of its IPC messages,
 * stop it for sure, pick a free port, and read the file-descriptor limit.
 */
import { type ChildProcess, execFileSync, fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';

export interface ForkOptions {
  env?: NodeJS.ProcessEnv;
  /** Extra node flags, e.g. `--expose-gc`. */
  nodeFlags?: string[];
  /** Raise the soft fd limit to this many for the child (through `bash -c 'ulimit -n'`), capped by the hard limit. */
  fds?: number;
  /**
   * The child's stdout: forwarded (true), ignored (false, the default), or piped with its stderr ('pipe', to print
   * it in one piece when several children run at once). Otherwise stderr is always shown.
   */
  stdout?: boolean | 'pipe';
}

/** Fork `file` (TypeScript, run through tsx) with an IPC channel. */
export function forkTs(file: string, args: string[] = [], options: ForkOptions = {}): ChildProcess {
  const execArgv = ['--import', 'tsx', ...(options.nodeFlags ?? [])];
  const out = options.stdout === 'pipe' ? 'pipe' : options.stdout ? 'inherit' : 'ignore';
  const stdio: ['ignore', 'inherit' | 'ignore' | 'pipe', 'inherit' | 'pipe', 'ipc'] = ['ignore', out, out === 'pipe' ? 'pipe' : 'inherit', 'ipc'];
  const env = { ...process.env, ...options.env };
  const limit = fdLimit();
  if (options.fds !== undefined && options.fds > limit.soft && limit.hard > limit.soft) {
    // A process cannot raise its own soft limit from JavaScript; bash can, then exec keeps the IPC fd open.
    const n = Math.min(options.fds, limit.hard);
    return spawn('bash', ['-c', `ulimit -n ${n}; exec "$0" "$@"`, process.execPath, ...execArgv, file, ...args], { stdio, env });
  }
  return fork(file, args, { execArgv, stdio, env });
}

/** Wait for the first IPC message of `child` that `match` accepts; reject if the child exits first or on timeout. */
export function nextMessage<T>(child: ChildProcess, match: (m: unknown) => m is T, timeoutMs: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | undefined, value?: T) => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(value as T);
    };
    const onMessage = (m: unknown) => {
      if (match(m)) done(undefined, m);
    };
    const onExit = (code: number | null, signal: string | null) => done(new Error(`${what}: the child exited (${code ?? signal}) first`));
    const timer = setTimeout(() => done(new Error(`${what}: no answer within ${timeoutMs} ms`)), timeoutMs);
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

/** A type guard for `{ type: name }` messages. */
export function ofType<T extends { type: string }>(name: T['type']): (m: unknown) => m is T {
  return (m: unknown): m is T => typeof m === 'object' && m !== null && (m as { type?: unknown }).type === name;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the child is gone. Idempotent. */
export async function stopChild(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** A TCP port that was free a moment ago (for tools that need a fixed port: node --watch, pm2). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

let cachedLimit: { soft: number; hard: number } | undefined;

/** The shell's open-file limits (what a forked child inherits, and how far bash may raise it). */
export function fdLimit(): { soft: number; hard: number } {
  if (cachedLimit) return cachedLimit;
  const read = (flag: string) => {
    const out = execFileSync('bash', ['-c', `ulimit ${flag}`], { encoding: 'utf8' }).trim();
    return out === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(out);
  };
  cachedLimit = { soft: read('-Sn'), hard: read('-Hn') };
  return cachedLimit;
}

/** Resolve once `127.0.0.1:port` accepts a TCP connection (a server started by another tool is up). */
export async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
}
