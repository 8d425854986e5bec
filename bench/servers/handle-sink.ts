/**
 * The U1 baseline's helper processes: a child that takes sockets the naive way, one `child.send(msg, socket)` per
 * connection through Node's IPC channel (what Node gives you without hotline's handle lane, DESIGN.md §6), and a
 * child that opens the client side of those connections, so no single process holds more than one end of each.
 *
 *   handle-sink.ts sink N          reports { type: 'held' } once it holds N sockets
 *   handle-sink.ts connect N PORT  opens N connections to 127.0.0.1:PORT, reports { type: 'connected' }
 */
import net from 'node:net';

const [mode, count, port] = process.argv.slice(2);
const n = Number(count);

if (mode === 'connect') {
  const open: net.Socket[] = [];
  for (let i = 0; i < n; i += 200) {
    await Promise.all(
      Array.from({ length: Math.min(200, n - i) }, () => {
        const c = net.connect(Number(port), '127.0.0.1');
        open.push(c);
        c.on('error', () => undefined);
        return new Promise((resolve) => c.once('connect', resolve));
      }),
    );
  }
  process.send?.({ type: 'connected', count: open.length });
} else {
  const held: net.Socket[] = [];
  process.on('message', (_m: unknown, socket?: net.Socket) => {
    if (!socket) return;
    held.push(socket);
    if (held.length === n) process.send?.({ type: 'held', count: held.length });
  });
}
process.send?.({ type: 'ready' });
