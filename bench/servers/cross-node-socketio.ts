/**
 * C2's baseline node: socket.io 4 with `@socket.io/redis-adapter` on the local Redis (127.0.0.1:6379), so
 * `io.to('room').emit` reaches the room's members on every node, what socket.io's users run for several nodes. Every
 * socket but the publisher (`?pub=1`) joins one room; each `pub` event is sent with `io.to('room').emit('m', data)`.
 * The publisher emits `P` and gets `ok` with this node's room size. WebSocket transport only, no compression.
 *   node --import tsx cross-node-socketio.ts <redis url> <channel key>
 * IPC: `ready` with the engine.io ws:// url; `status` answers the process CPU time.
 */
import http from 'node:http';
import { createAdapter } from '@socket.io/redis-adapter';
import { createClient } from 'redis';
import { Server } from 'socket.io';

const [redisUrl = 'redis://127.0.0.1:6379', key = 'socket.io'] = process.argv.slice(2);
const pub = createClient({ url: redisUrl });
const sub = pub.duplicate();
// A missing error listener crashes the process on a Redis hiccup (socket.io-redis-adapter#425).
pub.on('error', (err: Error) => console.error('redis pub:', err.message));
sub.on('error', (err: Error) => console.error('redis sub:', err.message));
await Promise.all([pub.connect(), sub.connect()]);

const server = http.createServer();
const io = new Server(server, { serveClient: false, transports: ['websocket'], perMessageDeflate: false, maxHttpBufferSize: 1 << 20, adapter: createAdapter(pub, sub, { key }) });
io.on('connection', (socket) => {
  if (socket.handshake.query.pub !== '1') void socket.join('room');
  socket.on('P', () => socket.emit('ok', io.of('/').adapter.rooms.get('room')?.size ?? 0));
  socket.on('pub', (data: string) => io.to('room').emit('m', data));
});
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as { port: number };
  process.send!({ type: 'ready', url: `ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket` });
});
process.on('message', (m: { type: string }) => {
  if (m.type !== 'status') return;
  const cpu = process.cpuUsage();
  process.send!({ type: 'status', cpuMs: (cpu.user + cpu.system) / 1000 });
});
const quit = () => void Promise.allSettled([pub.quit(), sub.quit()]).finally(() => process.exit(0));
process.on('disconnect', quit);
process.on('SIGTERM', quit);
