/**
 * C1's socket.io 4 baseline: every socket but the publisher (`?pub=1`) joins one room, and each `pub` event is sent
 * with `io.to('room').emit('m', data)`, socket.io's own room broadcast (it encodes the packet once). WebSocket
 * transport only, no compression, as hotline's listener. The publisher emits `P` first and gets `ok` with the room
 * size. IPC: `ready` with the ws:// url of the engine.io endpoint; `status` answers the process CPU time.
 */
import http from 'node:http';
import { Server } from 'socket.io';

const server = http.createServer();
const io = new Server(server, { serveClient: false, transports: ['websocket'], perMessageDeflate: false, maxHttpBufferSize: 1 << 20 });
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
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
