/**
 * `hotline start` and `hotline dev`: run a host in this process, print one ready line, and map signals:
 * SIGHUP reloads; SIGTERM and SIGINT shut down gracefully and exit 0.
 */
import { chmodSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { defaultAdminPath } from '../admin/protocol.js';
import { HotlineError, isHotlineError } from '../errors.js';
import { createHost, type Host } from '../host/host.js';
import { FileSessionStore } from '../session/file-store.js';
import type { ListenOptions } from '../transport/transport.js';
import { listen } from '../transport/listen.js';
import { prettyDestination } from './pretty-log.js';
import { createStaticServer } from './static-server.js';

export interface StartFlags {
  port?: string;
  host?: string;
  transport?: string;
  framing?: string;
  watch?: boolean;
  admin?: string;
  static?: string;
  /** Resumable sessions for hotline/client, kept in a file store beside the admin socket (.hotline/sessions). */
  sessions?: boolean;
}

function parsePort(value: string | undefined): number {
  if (value === undefined) return 8080;
  // Digits only: Number('') is 0 and Number('0x50') is 80, neither of which the user meant.
  const n = /^\d{1,5}$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new HotlineError('HOTLINE_E_CONFIG', `--port must be 0..65535, got "${value}"`);
  return n;
}

export async function runStart(mode: 'start' | 'dev', entry: string | undefined, flags: StartFlags): Promise<number> {
  if (!entry) throw new HotlineError('HOTLINE_E_CONFIG', `hotline ${mode} needs a plugin entry, e.g. hotline ${mode} ./plugin.ts`);
  const transport = flags.transport ?? 'ws';
  if (transport !== 'ws' && transport !== 'tcp') throw new HotlineError('HOTLINE_E_CONFIG', `--transport must be ws or tcp, got "${transport}"`);
  const framing = flags.framing ?? 'lines';
  if (framing !== 'lines' && framing !== 'length') throw new HotlineError('HOTLINE_E_CONFIG', `--framing must be lines or length, got "${framing}"`);
  if (flags.static && transport !== 'ws') throw new HotlineError('HOTLINE_E_CONFIG', '--static needs --transport ws');
  const port = parsePort(flags.port);
  const hostname = flags.host ?? '127.0.0.1';
  const logger = mode === 'dev' ? pino({ level: 'info' }, prettyDestination()) : pino({ level: 'info' }, pino.destination(2));

  let listenOpts: ListenOptions;
  if (flags.static) {
    const server = createStaticServer(flags.static);
    await listen(server, port, hostname);
    listenOpts = { transport: 'ws', server };
  } else if (transport === 'ws') {
    listenOpts = { transport: 'ws', port, host: hostname };
  } else {
    listenOpts = { transport: 'tcp', port, host: hostname, framing };
  }

  const admin = path.resolve(flags.admin ?? defaultAdminPath());
  if (!flags.admin) {
    // The default folder is ours: make it private even if an earlier run or a checkout created it wider.
    const dir = path.dirname(admin);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
  }
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
      watch: mode === 'dev' || flags.watch === true,
      admin,
      logger,
      ...(flags.sessions && { sessions: { store: new FileSessionStore(path.join(path.dirname(path.resolve(admin)), 'sessions')) } }),
    });
  } catch (err) {
    // The page server is already listening; left open it would keep a failed start from ever exiting.
    if (listenOpts.transport === 'ws') listenOpts.server?.close();
    throw err;
  } finally {
    process.off('SIGHUP', onEarlyHup);
  }
  const plugin = host.status().plugin!;
  const url = host.addresses()[0]!.url.replace(/^ws:\/\/(.*)\/$/, 'ws://$1/');
  const page = flags.static ? ` (page ${url.replace(/^ws/, 'http')})` : '';
  process.stdout.write(`hotline: serving ${plugin.name}@${plugin.version} on ${url}${page} admin ${admin}\n`);
  return waitForSignals(host, flags.static ? listenOpts : undefined, hupDuringStart);
}

function waitForSignals(host: Host, staticListen: ListenOptions | undefined, reloadNow: boolean): Promise<number> {
  return new Promise((resolve) => {
    const onHup = () => {
      host.reload('signal').catch((err: unknown) => {
        if (!isHotlineError(err)) host.log.error({ err }, 'SIGHUP reload failed');
      });
    };
    let stopping = false;
    const onStop = (signal: NodeJS.Signals) => {
      if (stopping) {
        // A second signal while draining: the operator wants out now.
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
