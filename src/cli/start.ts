/**
 * `hotline start` and `hotline dev`: run a host in this process, print one ready line, and map signals:
 * SIGHUP reloads; SIGTERM and SIGINT shut down gracefully and exit 0.
 */
import pino from 'pino';
import { HotlineError, isHotlineError } from '../errors.js';
import { createHost, type Host } from '../host/host.js';
import { installLastResort } from '../host/last-resort.js';
import { FileSessionStore } from '../session/file-store.js';
import type { ListenOptions } from '../transport/transport.js';
import { listen } from '../transport/listen.js';
import { parseListenFlags, resolveAdminPath, sessionsDir, stateDir, type StartFlags } from './flags.js';
import { parseClusterFlags, parseTuning, tunedHostOptions } from '../config/tuning.js';
import { prettyDestination } from '../log/pretty-log.js';
import { createStaticServer } from '../static/static-server.js';
import { formatHttpAdminAddress } from '../ops/http-address.js';
import { httpAdminFromFlags, httpAdminLine, writeHttpAdminInfo } from './http-admin-flags.js';

export async function runStart(mode: 'start' | 'dev', entry: string | undefined, flags: StartFlags): Promise<number> {
  if (!entry) throw new HotlineError('HOTLINE_E_CONFIG', `hotline ${mode} needs a plugin entry, e.g. hotline ${mode} ./plugin.ts`);
  const l = parseListenFlags(flags);
  const cluster = parseClusterFlags(flags);
  const tuning = parseTuning(flags, flags.sessions === true || cluster !== undefined);
  const logger = mode === 'dev' ? pino({ level: 'info' }, prettyDestination()) : pino({ level: 'info' }, pino.destination(2));
  installLastResort('host', mode === 'dev' ? { logger } : {});

  let listenOpts: ListenOptions;
  if (l.static) {
    const server = createStaticServer(l.static, l.tls);
    await listen(server, l.port, l.host);
    listenOpts = { transport: 'ws', server };
  } else if (l.transport === 'ws') {
    listenOpts = { transport: 'ws', port: l.port, host: l.host, tls: l.tls };
  } else {
    listenOpts = { transport: 'tcp', port: l.port, host: l.host, framing: l.framing, tls: l.tls };
  }

  const admin = resolveAdminPath(flags.admin);
  const http = httpAdminFromFlags(flags);
  // SIGHUP's default action kills the process. Until the host is up, remember the request instead, and reload once
  // it is: the first build may have read the disk before the change the signal announces.
  let hupDuringStart = false;
  const onEarlyHup = () => {
    hupDuringStart = true;
  };
  process.on('SIGHUP', onEarlyHup);
  let host: Host;
  try {
    host = await createHost({
      plugin: entry,
      listen: [listenOpts],
      admin,
      logger,
      ...(http && { httpAdmin: { listen: formatHttpAdminAddress(http.config.address), token: http.config.token } }),
      ...tunedHostOptions(tuning, mode === 'dev' || flags.watch === true, flags.sessions && !cluster ? new FileSessionStore(sessionsDir(admin)) : undefined, stateDir(flags, admin), cluster),
    });
  } catch (err) {
    // The page server is already listening; left open it would keep a failed start from ever exiting.
    if (listenOpts.transport === 'ws') listenOpts.server?.close();
    throw err;
  } finally {
    process.off('SIGHUP', onEarlyHup);
  }
  const plugin = host.status().plugin!;
  const url = host.addresses()[0]!.url;
  const page = flags.static ? ` (page ${url.replace(/^ws/, 'http')})` : '';
  process.stdout.write(`hotline: serving ${plugin.name}@${plugin.version} on ${url}${page} admin ${admin}\n`);
  const httpAddress = host.httpAdminAddress;
  if (http && httpAddress) process.stdout.write(httpAdminLine(httpAddress, writeHttpAdminInfo(admin, httpAddress, http), http));
  return waitForSignals(host, flags.static ? listenOpts : undefined, hupDuringStart);
}

function waitForSignals(host: Host, staticListen: ListenOptions | undefined, reloadNow: boolean): Promise<number> {
  return new Promise((resolve) => {
    const onHup = () => {
      host.reload('signal', { ifChanged: true }).catch((err: unknown) => {
        if (!isHotlineError(err)) host.log.error({ err }, 'SIGHUP reload failed');
      });
    };
    let stopping = false;
    const onStop = (signal: NodeJS.Signals) => {
      if (stopping) {
        // A second signal while sending clients away: the operator wants out now.
        process.exit(1);
      }
      stopping = true;
      host.log.info(`${signal}: shutting down gracefully`);
      const exit = (code: number) => {
        process.off('SIGHUP', onHup);
        // Normally nothing is left and the process exits by itself. A handle a plugin opened and never closed (its
        // own server, an untracked socket) would keep it alive forever: exit anyway, once stdout has had its chance.
        setTimeout(() => process.exit(code), 1000).unref();
        resolve(code);
      };
      host.close().then(
        () => {
          if (staticListen?.transport === 'ws') staticListen.server?.close();
          exit(0);
        },
        (err: unknown) => {
          host.log.error({ err }, 'shutdown failed');
          exit(1);
        },
      );
    };
    process.on('SIGHUP', onHup);
    process.once('SIGTERM', onStop);
    process.once('SIGINT', onStop);
    if (reloadNow) onHup();
  });
}
