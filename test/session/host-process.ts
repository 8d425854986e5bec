/**
 * A host in its own process for the restart tests: `node --import tsx host-process.ts <plugin> <store dir> <port>`.
 * Prints `ready <port>` once serving. Killed with SIGKILL by the test, so nothing here may rely on a clean exit.
 */
import { createHost, FileSessionStore } from '../../src/index.js';
import { quietLogger } from '../helpers/quiet-logger.js';

const [plugin, dir, port] = process.argv.slice(2);
const host = await createHost({
  plugin: plugin!,
  listen: [{ transport: 'ws', port: Number(port ?? 0) }],
  sessions: { store: new FileSessionStore(dir!) },
  logger: quietLogger,
});
process.stdout.write(`ready ${host.addresses()[0]!.port}\n`);
