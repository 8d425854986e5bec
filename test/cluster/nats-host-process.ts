/**
 * A node for the cluster session tests: `node --import tsx nats-host-process.ts <plugin> <nats url> <bucket> [cluster]`.
 * With `cluster`, rooms span the nodes too (the cluster bus and presence, cluster name = the bucket). Prints
 * `ready <port>` once serving. Killed with SIGKILL by the tests, so nothing here may rely on a clean exit.
 */
import { createHost } from '../../src/index.js';
import { quietLogger } from '../helpers/quiet-logger.js';

const [plugin, servers, bucket, cluster] = process.argv.slice(2);
const host = await createHost({
  plugin: plugin!,
  listen: [{ transport: 'ws', port: 0 }],
  sessions: { store: 'nats', servers: servers!, bucket },
  ...(cluster === 'cluster' && { cluster: { servers: servers!, name: bucket } }),
  logger: quietLogger,
});
process.stdout.write(`ready ${host.addresses()[0]!.port}\n`);
