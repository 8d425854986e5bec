/**
 * A supervisor process for the handoff tests: one WebSocket and one TCP listener by default (the CLI has one), real
 * worker processes. Prints one JSON line with its addresses once serving; stops on SIGTERM.
 * argv: entry adminPath envFile readyTimeoutMs [listenersJson]
 */
import pino from 'pino';
import type { HostTuning } from '../../src/config/tuning.js';
import type { ListenerSpec } from '../../src/handoff/protocol.js';
import { Supervisor } from '../../src/handoff/supervisor.js';
import { resolveHttpAdmin } from '../../src/ops/http-admin-options.js';

const httpAdmin = process.env.HOTLINE_TEST_HTTP_ADMIN ? resolveHttpAdmin(JSON.parse(process.env.HOTLINE_TEST_HTTP_ADMIN) as { listen: string }) : undefined;

/** Host tuning (src/config/tuning.ts), for a test whose handlers are held on purpose longer than the defaults allow. */
const tuning = process.env.HOTLINE_TEST_TUNING ? (JSON.parse(process.env.HOTLINE_TEST_TUNING) as HostTuning) : undefined;

const [entry, admin, envFile, readyTimeout, listenJson] = process.argv.slice(2);
const sup = new Supervisor({
  config: {
    entry: entry!,
    listen: listenJson
      ? (JSON.parse(listenJson) as ListenerSpec[])
      : [
          { transport: 'ws', host: '127.0.0.1', port: 0 },
          { transport: 'tcp', host: '127.0.0.1', port: 0, framing: 'lines' },
        ],
    watch: false,
    dev: false,
    ...(tuning && { tuning }),
  },
  admin: admin!,
  envFile,
  readyTimeout: Number(readyTimeout ?? 30_000),
  ackTimeout: 10_000,
  ...(httpAdmin && { httpAdmin }),
  log: pino({ level: process.env.HOTLINE_TEST_LOG ? 'info' : 'silent' }),
});
await sup.start();
sup.handleSignals();
process.stdout.write(JSON.stringify({ pid: process.pid, addresses: sup.addresses, httpAdmin: sup.httpAdminAddress }) + '\n');
process.exitCode = await sup.whenStopped();
