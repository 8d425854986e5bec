/**
 * A node for the presence tests: `node --import tsx presence-node-process.ts <plugin> <nats url> <node name>
 * <heartbeat ms> <expireAfter ms>`. Prints `ready <port>` once serving, and answers the IPC message `status` with
 * its `host.status()`. Killed with SIGKILL by the tests, so nothing here may rely on a clean exit.
 */
import { createHost } from '../../src/index.js';
import { quietLogger } from '../helpers/quiet-logger.js';

const [plugin, servers, node, heartbeat, expireAfter] = process.argv.slice(2);
const host = await createHost({
  plugin: plugin!,
  listen: [{ transport: 'ws', port: 0 }],
  cluster: { servers: servers!, node: node!, presence: { heartbeat: Number(heartbeat), expireAfter: Number(expireAfter) } },
  logger: quietLogger,
});
process.on('message', (m) => {
  if (m === 'status') process.send!({ status: host.status() });
  if (m === 'close') void host.close().then(() => process.exit(0));
});
process.stdout.write(`ready ${host.addresses()[0]!.port}\n`);
