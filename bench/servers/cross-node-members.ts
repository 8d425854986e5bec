/**
 * Room members for C2, in their own process: groups of WebSocket connections spread over the nodes of one cluster
 * under test (one group per cluster), each connection counting what it receives. A message carries
 * `<origin>.<seq>:<sent at, wall ms>:<padding>`, one sequence per publishing node; each connection checks every
 * origin's sequence (increasing, none twice) and each delivery's latency goes into its group's histogram. Once every
 * connection of a group in this process has (origin, seq), the process says so (`got`).
 *
 * The same minimal client as C1's (bench/lib/member-socket.ts, which says why): WebSocket, or socket.io 4 on it.
 *
 * IPC in: { type: 'connect', group, urls, connections, mode, localAddresses } · { type: 'report', group } · { type: 'close' }
 *   (`connections` per url)
 * IPC out: { type: 'connected', group } · { type: 'got', group, origin, seq } · { type: 'report', group, histogram, deliveries, bad }
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { type MemberMode, openMember } from '../lib/member-socket.js';
import { Histogram } from '../lib/stats.js';

type Mode = MemberMode;
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
  const last = new Array<number>(MAX_ORIGINS).fill(-1);
  return openMember(url, g.mode, localAddress, sockets, (text) => deliver(g, text, last));
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
