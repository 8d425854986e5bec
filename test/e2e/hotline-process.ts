/**
 * A spawned `hotline` process for end-to-end tests: the real bin, the real admin socket, real signals. The bin runs
 * dist/, which `npm test` builds first (pretest); run `npm run build` before running one of these files alone.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Absolute path of bin/hotline.js. */
export const HOTLINE_BIN = fileURLToPath(new URL('../../bin/hotline.js', import.meta.url));

/** A pino JSON line the host wrote to stderr (only `hotline start`; `dev` prints human lines). */
export interface LogRecord {
  level?: number;
  msg?: string;
  code?: string;
  swap?: { trigger: string; to?: string; outcome: string; durations: Record<string, number>; totalMs: number; error?: { code: string } };
  [key: string]: unknown;
}

/** What the ready line says. */
export interface ReadyLine {
  line: string;
  /** `name@version` of the first plugin version. */
  label: string;
  url: string;
  admin: string;
}

const READY = /^hotline: serving (\S+) on (\S+)(?: \(page \S+\))? admin (\S+)$/;

export class HotlineProcess {
  readonly child: ChildProcess;
  readonly stdoutLines: string[] = [];
  readonly stderrLines: string[] = [];
  readonly logs: LogRecord[] = [];
  /** Resolves with the exit code and signal once the process exits. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #waiters = new Set<() => void>();
  #exitedNow = false;

  /** `detached`: in a process group of its own, so a test can signal the whole group (`process.kill(-pid, sig)`). */
  constructor(args: string[], cwd: string, options: { detached?: boolean } = {}) {
    this.child = spawn(process.execPath, [HOTLINE_BIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: options.detached === true });
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        this.#exitedNow = true;
        this.#notify();
        resolve({ code, signal });
      }),
    );
    readLines(this.child.stdout!, (line) => {
      this.stdoutLines.push(line);
      this.#notify();
    });
    readLines(this.child.stderr!, (line) => {
      this.stderrLines.push(line);
      try {
        this.logs.push(JSON.parse(line) as LogRecord);
      } catch {
        // A human line (`hotline dev`) or a CLI error line: kept in stderrLines.
      }
      this.#notify();
    });
  }

  /** Spawn `hotline <args>` and wait for its ready line. Rejects with its stderr if it exits first. */
  static async start(args: string[], cwd: string, timeoutMs = 20_000, options: { detached?: boolean } = {}): Promise<{ proc: HotlineProcess; ready: ReadyLine }> {
    const proc = new HotlineProcess(args, cwd, options);
    try {
      const line = await proc.waitFor(() => proc.stdoutLines.find((l) => READY.test(l)), timeoutMs, 'the ready line');
      const m = READY.exec(line)!;
      return { proc, ready: { line, label: m[1]!, url: m[2]!, admin: m[3]! } };
    } catch (err) {
      proc.kill('SIGKILL');
      throw err;
    }
  }

  /** Wait until `find` returns something, re-checked on every line and at exit. */
  waitFor<T>(find: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = find();
        if (found !== undefined) {
          done();
          resolve(found);
        } else if (this.#exitedNow) {
          done();
          reject(new Error(`hotline exited before ${what}; stderr:\n${this.stderrLines.slice(-20).join('\n')}`));
        }
      };
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no ${what} within ${timeoutMs} ms; stderr:\n${this.stderrLines.slice(-20).join('\n')}`));
      }, timeoutMs);
      this.#waiters.add(check);
      check();
    });
  }

  /** Wait for a switched swap to `label`, logged at or after log index `from`. */
  waitForSwap(label: string, from: number, timeoutMs = 15_000): Promise<LogRecord> {
    return this.waitFor(
      () => this.logs.slice(from).find((r) => r.swap?.outcome === 'switched' && r.swap.to === label),
      timeoutMs,
      `swap to ${label}`,
    );
  }

  kill(signal: NodeJS.Signals): void {
    if (!this.#exitedNow) this.child.kill(signal);
  }

  #notify(): void {
    for (const w of [...this.#waiters]) w();
  }
}

/** Run `hotline <args>` to completion. */
export function runHotline(args: string[], cwd: string, timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [HOTLINE_BIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`hotline ${args.join(' ')} did not exit within ${timeoutMs} ms`));
    }, timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** `hotline status --json` through `admin`, parsed; asserts it exited 0. */
export async function adminStatus<T>(admin: string, cwd: string): Promise<T> {
  const r = await runHotline(['status', '--admin', admin, '--json'], cwd);
  if (r.code !== 0) throw new Error(`hotline status exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

function readLines(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) !== -1) {
      onLine(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
  });
}
