/**
 * One node for C3: `node --import tsx cluster-node.ts <plugin> <nats url|memory> <bucket>`. Prints `ready <port>`.
 * `memory` is the baseline: sessions on, but in this process only (what a node that dies takes with it).
 */
import { createHost } from '../../src/index.js';
import pino from 'pino';

const [plugin, servers, bucket] = process.argv.slice(2);
const host = await createHost({
  plugin: plugin!,
  listen: [{ transport: 'ws', port: 0 }],
  sessions: servers === 'memory' ? true : { store: 'nats', servers: servers!, bucket },
  logger: pino({ level: 'silent' }),
});
process.stdout.write(`ready ${host.addresses()[0]!.port}\n`);
