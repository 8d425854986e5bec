/**
 * Room members for C1, in their own process: groups of WebSocket connections, one group per server under test,
 * each connection counting what it receives. Every message carries `<seq>:<sent at, wall ms>:<padding>`; each
 * delivery's latency goes into its group's histogram, and once every connection of a group in this process has
 * message `seq`, the process says so (`got`), so the orchestrator can keep a fixed number of broadcasts in flight.
 *
 * The members are bare sockets with a minimal WebSocket client (the handshake, unmasked server frames, masked pongs
 * and short text frames), not the `ws` client: on the two cores the servers share, ws' client costs several times
 * what the servers spend per delivery, and the figure would measure the members. `mode: 'sio'` speaks socket.io 4 on
 * top (engine.io v4: open `0{…}`, connect `40`, ping `2` answered `3`, events `42[…]`), so the three servers face the
 * same client code.
 *
 * IPC in: { type: 'connect', group, url, connections, mode, localAddresses } · { type: 'report', group } · { type: 'close' }
 * IPC out: { type: 'connected', group } · { type: 'got', group, seq } · { type: 'report', group, histogram, deliveries, bad }
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { Histogram } from '../lib/stats.js';

type Mode = 'ws' | 'sio';
interface Connect {
  type: 'connect';
  group: number;
  url: string;
  connections: number;
  mode: Mode;
  localAddresses: string[];
}

interface Group {
  id: number;
  mode: Mode;
  expected: number;
  histogram: Histogram;
  counts: Map<number, number>;
  deliveries: number;
  /** Messages that did not parse, or came again or out of order to one connection. */
  bad: number;
}

const wallNow = () => performance.timeOrigin + performance.now();
const groups = new Map<number, Group>();
const sockets: net.Socket[] = [];
const SIO_EVENT = '42["m","';

/** A short text frame from a client: masked with a zero key (a valid key that leaves the bytes as they are). */
function clientText(text: string): Buffer {
  const payload = Buffer.from(text);
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length, 0, 0, 0, 0]), payload]);
}

function deliver(g: Group, text: string, last: { seq: number }): void {
  const at = wallNow();
  const c1 = text.indexOf(':');
  const c2 = text.indexOf(':', c1 + 1);
  const seq = Number(text.slice(0, c1));
  const sent = Number(text.slice(c1 + 1, c2));
  if (c1 < 0 || c2 < 0 || !Number.isFinite(seq) || !Number.isFinite(sent) || seq <= last.seq) {
    g.bad++;
    return;
  }
  last.seq = seq;
  g.deliveries++;
  g.histogram.record((at - sent) * 1000);
  const n = (g.counts.get(seq) ?? 0) + 1;
  if (n === g.expected) {
    g.counts.delete(seq);
    process.send!({ type: 'got', group: g.id, seq });
  } else g.counts.set(seq, n);
}

function open(g: Group, url: URL, localAddress: string | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: url.hostname, port: Number(url.port), ...(localAddress ? { localAddress } : {}) });
    sockets.push(socket);
    socket.setNoDelay(true);
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.write(
        `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      );
    });
    const last = { seq: -1 };
    let buf: Buffer | undefined;
    let upgraded = false;
    const onText = (text: string) => {
      if (g.mode === 'ws') deliver(g, text, last);
      else if (text.startsWith(SIO_EVENT)) deliver(g, text.slice(SIO_EVENT.length), last);
      else if (text === '2') socket.write(clientText('3'));
      else if (text[0] === '0') socket.write(clientText('40'));
      else if (text.startsWith('40')) resolve();
    };
    socket.on('data', (chunk: Buffer) => {
      buf = buf ? Buffer.concat([buf, chunk]) : chunk;
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        if (!buf.subarray(0, 12).toString('latin1').includes(' 101')) return reject(new Error(`handshake refused: ${buf.subarray(0, 40).toString('latin1')}`));
        upgraded = true;
        buf = buf.subarray(end + 4);
        if (g.mode === 'ws') resolve();
      }
      let off = 0;
      while (buf.length - off >= 2) {
        const opcode = buf[off]! & 0x0f;
        let len = buf[off + 1]! & 0x7f;
        let head = 2;
        if (len === 126) {
          if (buf.length - off < 4) break;
          len = buf.readUInt16BE(off + 2);
          head = 4;
        } else if (len === 127) {
          if (buf.length - off < 10) break;
          len = Number(buf.readBigUInt64BE(off + 2));
          head = 10;
        }
        if (buf.length - off < head + len) break;
        const start = off + head;
        if (opcode === 1) onText(buf.toString('latin1', start, start + len));
        else if (opcode === 9) socket.write(Buffer.concat([Buffer.from([0x8a, 0x80 | len, 0, 0, 0, 0]), buf.subarray(start, start + len)]));
        off = start + len;
      }
      buf = off === buf.length ? undefined : buf.subarray(off);
    });
  });
}

process.on('message', (m: Connect | { type: 'report'; group: number } | { type: 'close' }) => {
  if (m.type === 'connect') {
    const g: Group = { id: m.group, mode: m.mode, expected: m.connections, histogram: new Histogram(), counts: new Map(), deliveries: 0, bad: 0 };
    groups.set(m.group, g);
    const url = new URL(m.url);
    void (async () => {
      // 200 handshakes at a time: what a server's accept backlog takes without refusing.
      for (let i = 0; i < m.connections; i += 200) {
        const batch = [];
        for (let k = i; k < Math.min(m.connections, i + 200); k++) batch.push(open(g, url, m.localAddresses[k % m.localAddresses.length]));
        await Promise.all(batch);
      }
      process.send!({ type: 'connected', group: g.id });
    })();
  } else if (m.type === 'report') {
    const g = groups.get(m.group)!;
    process.send!({ type: 'report', group: g.id, histogram: g.histogram.toJSON(), deliveries: g.deliveries, bad: g.bad });
  } else {
    for (const s of sockets) s.destroy();
    process.exit(0);
  }
});
