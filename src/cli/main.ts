/**
 * The `hotline` command. Subcommands and flags are a scripting interface: keep their names stable.
 *
 *   hotline start <entry> [--port N] [--host H] [--transport ws|tcp] [--framing lines|length] [--watch] [--admin PATH]
 *                         [--static DIR] [--sessions] [--state DIR] [--tls-cert PATH --tls-key PATH] [--env-file PATH]
 *                         [--http-admin HOST:PORT | --metrics] [--admin-token-file PATH]
 *   hotline dev <entry> [same flags]        start with --watch and readable swap logs
 *   hotline reload   [--admin PATH] [--json] [--force]   swap to what is on disk now ("unchanged" unless it changed)
 *   hotline reload --pin [--max-age 10m] | --canary 10%   issue 12: keep the old version for its connections, or a canary
 *   hotline promote  [--admin PATH] [--json]            fold the other live versions into the canary (or the current one)
 *   hotline rollback [--admin PATH] [--json]            swap back to the previous build (or roll a canary back)
 *   hotline status   [--admin PATH] [--json]
 *   hotline upgrade  [--admin PATH] [--json]            replace the worker process, handing live connections over
 *   hotline version | --version | -v
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { HotlineError, isHotlineError, messageOf } from '../errors.js';
import { runAdminCommand } from './admin-commands.js';
import { runStart } from './start.js';
import { runSupervised } from './supervise.js';
import { runUpgrade } from './upgrade.js';
import { TUNING_ARG_OPTIONS, tuningHelp } from '../config/tuning.js';

const USAGE = `usage:
  hotline start <entry> [--port N] [--host H] [--transport ws|tcp] [--framing lines|length] [--watch]
                        [--admin PATH] [--static DIR] [--sessions] [--state DIR] [--tls-cert PATH --tls-key PATH]
                        [--cluster nats://H:P[,…]] [--cluster-wait MS] [--cluster-node NAME]
                        [--config FILE.json] [--max-payload N ... every limit below]
                        [--env-file PATH]   (KEY=VALUE lines, re-read at every worker start)
                        [--http-admin HOST:PORT | --metrics] [--admin-token-file PATH]
                            (metrics, dashboard and token API over HTTP; --metrics is 127.0.0.1:9464)
  hotline dev <entry>   [same flags as start but --env-file; watches and prints readable swap logs]
  hotline reload   [--admin PATH] [--json] [--force]   an identical build is "unchanged" unless --force
  hotline reload --pin [--max-age 10m]   open connections finish on the old version, new ones get the new one
  hotline reload --canary 10% [--window 60s]   a share of new connections get the new version, judged, then promoted
  hotline promote  [--admin PATH] [--json]   promote the canary, or migrate pinned connections now
  hotline rollback [--admin PATH] [--json]   (a canary: its connections migrate back to stable)
  hotline status   [--admin PATH] [--json]
  hotline upgrade  [--admin PATH] [--json]   (start runs a supervisor; replaces its worker process)
  hotline --version | -v | version

--port 0 picks a free port. The admin socket defaults to .hotline/admin.sock. --state DIR checkpoints the plugin's
global state there (every swap, every 5 s when changed, at shutdown) and restores it after a crash; --sessions
turns it on in .hotline/state. --cluster nats://H:P[,…] keeps sessions in a NATS JetStream KV bucket shared by
every node (a client whose node died resumes on another), and rooms span the nodes through NATS: their messages
reach every node's members, and their members are known on every node (presence); NATS unreachable at start fails
at once, or waits up to --cluster-wait MS. --cluster-node NAME names this node (default <hostname>-<pid>): keep it
across restarts so a restarted node replaces its old entries at once.

${tuningHelp()}`;

/** The version of this package, from its package.json (two levels up from src/cli and from dist/cli). */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === '--version' || command === '-v' || command === 'version') {
    process.stdout.write(`hotline ${packageVersion()}\n`);
    return 0;
  }
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      transport: { type: 'string' },
      framing: { type: 'string' },
      watch: { type: 'boolean' },
      admin: { type: 'string' },
      static: { type: 'string' },
      sessions: { type: 'boolean' },
      cluster: { type: 'string' },
      'cluster-wait': { type: 'string' },
      'cluster-node': { type: 'string' },
      state: { type: 'string' },
      json: { type: 'boolean' },
      force: { type: 'boolean' },
      pin: { type: 'boolean' },
      'max-age': { type: 'string' },
      canary: { type: 'string' },
      window: { type: 'string' },
      'env-file': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'http-admin': { type: 'string' },
      metrics: { type: 'boolean' },
      'admin-token-file': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      ...TUNING_ARG_OPTIONS,
    },
  });
  if (values.help || command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE + '\n');
    return command === undefined ? 2 : 0;
  }
  if (values.force && command !== 'reload') throw new HotlineError('HOTLINE_E_CONFIG', '--force belongs to `hotline reload` only');
  switch (command) {
    case 'start':
      // A supervisor with a stable PID runs the host in a worker process it can upgrade (src/handoff).
      return runSupervised(positionals[0], values);
    case 'dev':
      return runStart(command, positionals[0], values);
    case 'upgrade':
      return runUpgrade(values);
    case 'reload':
    case 'rollback':
    case 'status':
    case 'promote':
      return runAdminCommand(command, values);
    default:
      throw new HotlineError('HOTLINE_E_CONFIG', `unknown command "${command}"\n${USAGE}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const code = isHotlineError(err) ? err.code : 'HOTLINE_E_CONFIG';
    process.stderr.write(`hotline: ${code}: ${messageOf(err)}\n`);
    process.exitCode = 1;
  },
);
