/* global console, process, setInterval */
// A tiny feed for the example: every 100 ms, one line `<seq> <price>` to each connected peer. A peer may send
// `resume <seq>`; this toy feed only logs it (a real one would replay from there).
import net from 'node:net';

const port = Number(process.argv[2] ?? 7000);
const peers = new Set();
let seq = 0;
net
  .createServer((s) => {
    peers.add(s);
    s.on('data', (d) => console.log(`peer says: ${String(d).trim()}`));
    s.on('error', () => {});
    s.on('close', () => peers.delete(s));
  })
  .listen(port, '127.0.0.1', () => console.log(`feed on tcp://127.0.0.1:${port}`));
setInterval(() => {
  const line = `${seq++} ${(100 + Math.sin(seq / 10) * 5).toFixed(2)}\n`;
  for (const p of peers) p.write(line);
}, 100);
