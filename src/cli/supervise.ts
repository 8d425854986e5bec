/**
 * `hotline start` under a supervisor (src/handoff): this process keeps its PID, owns the listening sockets and the
 * admin socket, and runs the host in a worker process it can replace (`hotline upgrade`, SIGUSR2) without dropping
 * connections. Prints the same ready line as an in-process start; exits with the worker's exit code.
 */
import { chmodSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { defaultAdminPath } from '../admin/protocol.js';
import { HotlineError } from '../errors.js';
import type { ListenerSpec } from '../handoff/protocol.js';
import { Supervisor } from '../handoff/supervisor.js';
import { formatHost } from '../transport/transport.js';

export interface SuperviseFlags {
  port?: string;
  host?: string;
  transport?: string;
  framing?: string;
  watch?: boolean;
  admin?: string;
  static?: string;
  'env-file'?: string;
  /** Resumable sessions in a file store beside the admin socket (.hotline/sessions), kept across workers. */
  sessions?: boolean;
}

export async function runSupervised(entry: string | undefined, flags: SuperviseFlags): Promise<number> {
  if (!entry) throw new HotlineError('HOTLINE_E_CONFIG', 'hotline start needs a plugin entry, e.g. hotline start ./plugin.ts');
  const transport = flags.transport ?? 'ws';
  if (transport !== 'ws' && transport !== 'tcp') throw new HotlineError('HOTLINE_E_CONFIG', `--transport must be ws or tcp, got "${transport}"`);
  const framing = flags.framing ?? 'lines';
  if (framing !== 'lines' && framing !== 'length') throw new HotlineError('HOTLINE_E_CONFIG', `--framing must be lines or length, got "${framing}"`);
  if (flags.static && transport !== 'ws') throw new HotlineError('HOTLINE_E_CONFIG', '--static needs --transport ws');
  const portText = flags.port ?? '8080';
  // Digits only: Number('') is 0 and Number('0x50') is 80, neither of which the user meant.
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 0 && port <= 65535)) throw new HotlineError('HOTLINE_E_CONFIG', `--port must be 0..65535, got "${portText}"`);
  const host = flags.host ?? '127.0.0.1';
  const spec: ListenerSpec =
    transport === 'ws'
      ? { transport, host, port, static: flags.static ? path.resolve(flags.static) : undefined }
      : { transport, host, port, framing };

  const admin = path.resolve(flags.admin ?? defaultAdminPath());
  if (!flags.admin) {
    // The default folder is ours: make it private even if an earlier run or a checkout created it wider.
    const dir = path.dirname(admin);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
  }
  const log = pino({ level: 'info' }, pino.destination(2));
  const sup = new Supervisor({
    config: { entry: path.resolve(entry), listen: [spec], watch: flags.watch === true, dev: false, ...(flags.sessions && { sessions: path.join(path.dirname(admin), 'sessions') }) },
    admin,
    envFile: flags['env-file'] ? path.resolve(flags['env-file']) : undefined,
    log,
  });
  // SIGHUP's default action kills the process. Until the supervisor handles signals, remember the request and
  // replay it then: the first build may have read the disk before the change the signal announces.
  let hupDuringStart = false;
  const onEarlyHup = () => {
    hupDuringStart = true;
  };
  process.on('SIGHUP', onEarlyHup);
  try {
    await sup.start();
    sup.handleSignals();
  } finally {
    process.off('SIGHUP', onEarlyHup);
  }
  if (hupDuringStart) process.kill(process.pid, 'SIGHUP');
  const plugin = sup.plugin!;
  const a = sup.addresses[0]!;
  const url = a.transport === 'ws' ? `ws://${formatHost(a.host)}:${a.port}/` : `tcp://${formatHost(a.host)}:${a.port}`;
  const page = flags.static ? ` (page http://${formatHost(a.host)}:${a.port}/)` : '';
  process.stdout.write(`hotline: serving ${plugin.name}@${plugin.version} on ${url}${page} admin ${admin}\n`);
  return sup.whenStopped();
}
