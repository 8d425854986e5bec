/**
 * `hotline start` under a supervisor (src/handoff): this process keeps its PID, owns the listening sockets and the
 * admin socket, and runs the host in a worker process it can replace (`hotline upgrade`, SIGUSR2) without dropping
 * connections. Prints the same ready line as an in-process start; exits with the worker's exit code.
 */
import path from 'node:path';
import pino from 'pino';
import { HotlineError } from '../errors.js';
import type { ListenerSpec } from '../handoff/protocol.js';
import { Supervisor } from '../handoff/supervisor.js';
import { installLastResort } from '../host/last-resort.js';
import { formatHost, listenUrl } from '../transport/transport.js';
import { parseListenFlags, resolveAdminPath, sessionsDir, stateDir, type StartFlags } from './flags.js';
import { parseClusterFlags, parseTuning } from '../config/tuning.js';
import { httpAdminFromFlags, httpAdminLine, writeHttpAdminInfo } from './http-admin-flags.js';

export async function runSupervised(entry: string | undefined, flags: StartFlags): Promise<number> {
  if (!entry) throw new HotlineError('HOTLINE_E_CONFIG', 'hotline start needs a plugin entry, e.g. hotline start ./plugin.ts');
  const l = parseListenFlags(flags);
  // Checked here, before anything listens; the worker gets the result in its config (and checks it again).
  const cluster = parseClusterFlags(flags);
  const tuning = parseTuning(flags, flags.sessions === true || cluster !== undefined);
  const spec: ListenerSpec =
    l.transport === 'ws'
      ? { transport: 'ws', host: l.host, port: l.port, static: l.static, tls: l.tls }
      : { transport: 'tcp', host: l.host, port: l.port, framing: l.framing, tls: l.tls };
  const admin = resolveAdminPath(flags.admin);
  const state = stateDir(flags, admin);
  const http = httpAdminFromFlags(flags);
  const log = pino({ level: 'info' }, pino.destination(2));
  installLastResort('supervisor');
  const sup = new Supervisor({
    config: { entry: path.resolve(entry), listen: [spec], watch: flags.watch === true, dev: false, tuning, ...(flags.sessions && !cluster && { sessions: sessionsDir(admin) }), ...(cluster && { cluster }), ...(state && { state }) },
    admin,
    envFile: flags['env-file'] ? path.resolve(flags['env-file']) : undefined,
    ...(http && { httpAdmin: http.config }),
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
  const url = listenUrl(a.transport, a.tls, a.host, a.port);
  const page = flags.static ? ` (page ${a.tls ? 'https' : 'http'}://${formatHost(a.host)}:${a.port}/)` : '';
  process.stdout.write(`hotline: serving ${plugin.name}@${plugin.version} on ${url}${page} admin ${admin}\n`);
  const httpAddress = sup.httpAdminAddress;
  if (http && httpAddress) process.stdout.write(httpAdminLine(httpAddress, writeHttpAdminInfo(admin, httpAddress, http), http));
  return sup.whenStopped();
}
