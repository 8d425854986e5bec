/**
 * Room members for C1, in their own process: `connections` WebSockets to one server, each counting what it receives.
 * Every message carries `<seq>:<sent at, wall ms>:<padding>`; each delivery's latency goes into a histogram, and once
 * every connection of this process has a message `seq`, the process says so (`got`), so the orchestrator can keep a
 * fixed number of broadcasts in flight.
 *
 * `mode: 'sio'` speaks the socket.io 4 wire protocol over a plain WebSocket (engine.io v4: open `0{…}`, connect `40`,
 * ping `2` answered `3`, events `42[…]`), so the three servers are measured against the same client code and not
 * against socket.io-client's own cost, on the two cores the servers share.
 *
 * IPC in: { type: 'connect', url, connections, mode, localAddresses } · { type: 'report' } · { type: 'close' }
 * IPC out: { type: 'connected' } · { type: 'got', seq } · { type: 'report', histogram, deliveries, bad }
 */
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { Histogram } from '../lib/stats.js';

type Mode = 'ws' | 'sio';
interface Connect {
  type: 'connect';
  url: string;
  connections: number;
  mode: Mode;
  localAddresses: string[];
}

const wallNow = () => performance.timeOrigin + performance.now();
const histogram = new Histogram();
const counts = new Map<number, number>();
const sockets: WebSocket[] = [];
let expected = 0;
let deliveries = 0;
/** Messages that did not parse, or came twice to one connection (a seq at or below the last one it saw). */
let bad = 0;
/** sio: the prefix of an event as the server writes it, `42["m","`. */
const SIO_EVENT = '42["m","';

function deliver(text: string, last: { seq: number }): void {
  const at = wallNow();
  const c1 = text.indexOf(':');
  const c2 = text.indexOf(':', c1 + 1);
  const seq = Number(text.slice(0, c1));
  const sent = Number(text.slice(c1 + 1, c2));
  if (!Number.isFinite(seq) || !Number.isFinite(sent) || seq <= last.seq) {
    bad++;
    return;
  }
  last.seq = seq;
  deliveries++;
  histogram.record((at - sent) * 1000);
  const n = (counts.get(seq) ?? 0) + 1;
  if (n === expected) {
    counts.delete(seq);
    process.send!({ type: 'got', seq });
  } else counts.set(seq, n);
}

function open(url: string, mode: Mode, localAddress: string | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, ...(localAddress ? { localAddress } : {}) });
    const last = { seq: -1 };
    ws.once('error', reject);
    if (mode === 'ws') {
      ws.once('open', () => resolve());
      ws.on('message', (data) => deliver(String(data), last));
    } else {
      ws.on('message', (data) => {
        const text = String(data);
        if (text.startsWith(SIO_EVENT)) deliver(text.slice(SIO_EVENT.length), last);
        else if (text === '2') ws.send('3');
        else if (text[0] === '0') ws.send('40');
        else if (text.startsWith('40')) resolve();
      });
    }
    sockets.push(ws);
  });
}

process.on('message', (m: Connect | { type: 'report' | 'close' }) => {
  if (m.type === 'connect') {
    expected = m.connections;
    void (async () => {
      // 200 handshakes at a time: what a server's accept backlog takes without refusing.
      for (let i = 0; i < m.connections; i += 200) {
        const batch = [];
        for (let k = i; k < Math.min(m.connections, i + 200); k++) batch.push(open(m.url, m.mode, m.localAddresses[k % m.localAddresses.length]));
        await Promise.all(batch);
      }
      process.send!({ type: 'connected' });
    })();
  } else if (m.type === 'report') {
    process.send!({ type: 'report', histogram: histogram.toJSON(), deliveries, bad });
  } else {
    for (const ws of sockets) ws.terminate();
    process.exit(0);
  }
});
