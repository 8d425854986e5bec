/**
 * C1's raw baseline: a `ws` server that sends each publish to every other socket in a plain loop, `ws.send(data)`
 * per socket, which is what an application without rooms writes. The publisher says `P` first and is answered
 * `ok:<members>`. IPC: `ready` with its url; `status` answers the process CPU time.
 */
import { WebSocketServer, type WebSocket } from 'ws';

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 1 << 20 });
let publisher: WebSocket | undefined;
wss.on('connection', (ws) => {
  ws.on('message', (data) => {
    const text = String(data);
    if (text === 'P') {
      publisher = ws;
      ws.send(`ok:${wss.clients.size - 1}`);
    } else if (ws === publisher) {
      for (const c of wss.clients) if (c !== publisher) c.send(text);
    }
  });
});
wss.on('listening', () => {
  const { port } = wss.address() as { port: number };
  process.send!({ type: 'ready', url: `ws://127.0.0.1:${port}/` });
});
process.on('message', (m: { type: string }) => {
  if (m.type !== 'status') return;
  const cpu = process.cpuUsage();
  process.send!({ type: 'status', cpuMs: (cpu.user + cpu.system) / 1000 });
});
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
