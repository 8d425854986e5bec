/**
 * A host in its own process for the hostile tests that measure its RSS: `node --import tsx host-child.ts <options
 * JSON>`, forked with an IPC channel and MALLOC_ENV as `hotline start` forks its worker. Sends `{ type: 'ready',
 * addresses, pid }`, then `{ type: 'error', code }` for each connection error; answers `'status'` with the host's status and
 * `'collect'` (a full GC, run with --expose-gc) with `{ type: 'collected' }`.
 */
import { createHost } from '../../src/index.js';
import { quietLogger } from '../helpers/quiet-logger.js';
import { collect } from './hostile-rig.js';

const options = JSON.parse(process.argv[2]!) as Parameters<typeof createHost>[0];
const host = await createHost({ ...options, logger: quietLogger });
host.on('connection-error', (err) => process.send!({ type: 'error', code: err.code }));
process.on('message', (m) => {
  if (m === 'status') process.send!({ type: 'status', status: host.status() });
  if (m === 'collect') void collect().then(() => process.send!({ type: 'collected' }));
});
process.on('disconnect', () => void host.close().then(() => process.exit(0)));
process.send!({ type: 'ready', addresses: host.addresses(), pid: process.pid });
