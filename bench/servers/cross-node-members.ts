/**
 * Room members for C2, in their own process: groups of WebSocket connections spread over the nodes of one cluster
 * under test (one group per cluster), each connection counting what it receives. A message carries
 * `<origin>.<seq>:<sent at, wall ms>:<padding>`, one sequence per publishing node; each connection checks every
 * origin's sequence (increasing, none twice) and each delivery's latency goes into its group's histogram. Once every
 * connection of a group in this process has (origin, seq), the process says so (`got`).
 *
 * The same minimal client as C1's (bench/servers/fanout-members.ts, which says why): WebSocket, or socket.io 4 on it.
 *
 * IPC in: { type: 'connect', group, urls, connections, mode, localAddresses } · { type: 'report', group } · { type: 'close' }
 *   (`connections` per url)
 * IPC out: { type: 'connected', group } · { type: 'got', group, origin, seq } · { type: 'report', group, histogram, deliveries, bad }
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { Histogram } from '../lib/stats.js';

type Mode = 'ws' | 'sio';
interface Connect {
  type: 'connect';
  group: number;
  urls: string[];
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

/** Publishing nodes at most: a key of `counts` is origin * ORIGIN_SPAN + seq. */
const MAX_ORIGINS = 8;
const ORIGIN_SPAN = 2 ** 40;

function deliver(g: Group, text: string, last: number[]): void {
  const at = wallNow();
  const dot = text.indexOf('.');
  const c1 = text.indexOf(':');
  const c2 = text.indexOf(':', c1 + 1);
  const origin = Number(text.slice(0, dot));
  const seq = Number(text.slice(dot + 1, c1));
  const sent = Number(text.slice(c1 + 1, c2));
  if (dot < 0 || c1 < 0 || c2 < 0 || !Number.isInteger(origin) || origin < 0 || origin >= MAX_ORIGINS || !Number.isFinite(seq) || !Number.isFinite(sent) || seq <= last[origin]!) {
    g.bad++;
    return;
  }
  last[origin] = seq;
  g.deliveries++;
  g.histogram.record((at - sent) * 1000);
  const key = origin * ORIGIN_SPAN + seq;
  const n = (g.counts.get(key) ?? 0) + 1;
  if (n === g.expected) {
    g.counts.delete(key);
    process.send!({ type: 'got', group: g.id, origin, seq });
  } else g.counts.set(key, n);
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
    const last = new Array<number>(MAX_ORIGINS).fill(-1);
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
    const g: Group = { id: m.group, mode: m.mode, expected: m.connections * m.urls.length, histogram: new Histogram(), counts: new Map(), deliveries: 0, bad: 0 };
    groups.set(m.group, g);
    void (async () => {
      for (const u of m.urls) {
        const url = new URL(u);
        // 200 handshakes at a time: what a server's accept backlog takes without refusing.
        for (let i = 0; i < m.connections; i += 200) {
          const batch = [];
          for (let k = i; k < Math.min(m.connections, i + 200); k++) batch.push(open(g, url, m.localAddresses[k % m.localAddresses.length]));
          await Promise.all(batch);
        }
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
