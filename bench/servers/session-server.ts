/**
 * A hotline host in its own process for the resume bench (R1), so the bench can kill it with SIGKILL and start a new
 * one on the same port and store. Started with one JSON argument: { plugin, port, store? } (`store`: a directory for
 * the file session store; without it sessions are off and clients are served as plain WebSockets). Reports
 * `{ type: 'ready', port }` over IPC once listening. SIGTERM closes gracefully (reconnect hint, drain in batches) and
 * exits 0; a SIGKILL needs nothing from this file, which is the point.
 */
import pino from 'pino';
import { createHost, FileSessionStore } from '../../src/index.js';

export interface SessionServerConfig {
  plugin: string;
  port: number;
  store?: string;
}

const config = JSON.parse(process.argv[2] ?? '{}') as SessionServerConfig;
const host = await createHost({
  plugin: config.plugin,
  listen: [{ transport: 'ws', host: '127.0.0.1', port: config.port }],
  watch: false,
  // The bench measures resume, not probation; its plugin never throws.
  probation: false,
  limits: { maxConnections: 20_000 },
  sessions: config.store === undefined ? false : { store: new FileSessionStore(config.store) },
  logger: pino({ level: 'error' }, pino.destination(2)),
});

let closing = false;
const shutdown = () => {
  if (closing) return;
  closing = true;
  void host.close().then(() => process.exit(0));
};
process.on('SIGTERM', shutdown);
// The bench died: do not outlive it.
process.on('disconnect', shutdown);
process.send?.({ type: 'ready', port: host.addresses()[0]!.port });
