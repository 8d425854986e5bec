/**
 * A node for the cross-node room tests: `node --import tsx room-node-process.ts <plugin> <nats url> <node> <whileDown> [maxPayload]`.
 * Prints `ready <port>` once serving, then answers the test over IPC: `status` (host.status()), `metrics` (the Prometheus text), `reload` (a swap from
 * the plugin file on disk). Killed with SIGKILL by the tests, so nothing here may rely on a clean exit.
 */
import { createHost } from '../../src/index.js';
import { quietLogger } from '../helpers/quiet-logger.js';

const [plugin, servers, node, whileDown, maxPayload] = process.argv.slice(2);
const host = await createHost({
  plugin: plugin!,
  listen: [{ transport: 'ws', port: 0 }],
  cluster: { servers: servers!, name: 'roomtest', node: node!, whileDown: whileDown === 'drop' ? 'drop' : 'buffer' },
  ...(maxPayload && { limits: { maxPayload: Number(maxPayload) } }),
  metrics: true,
  logger: quietLogger,
});

process.on('message', (m: { id: number; cmd: 'status' | 'reload' | 'metrics' }) => {
  const reply = (body: unknown) => process.send!({ id: m.id, ...(body as object) });
  if (m.cmd === 'status') reply({ status: host.status() });
  else if (m.cmd === 'metrics') void host.metrics().then((text) => reply({ text }));
  else if (m.cmd === 'reload') host.reload('reload').then((record) => reply({ record }), (err: { code?: string }) => reply({ error: err.code ?? String(err) }));
});
process.stdout.write(`ready ${host.addresses()[0]!.port}\n`);
