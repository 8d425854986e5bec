/**
 * Room members for C1, in their own process: groups of WebSocket connections, one group per server under test,
 * each connection counting what it receives. Every message carries `<seq>:<sent at, wall ms>:<padding>`; each
 * delivery's latency goes into its group's histogram, and once every connection of a group in this process has
 * message `seq`, the process says so (`got`), so the orchestrator can keep a fixed number of broadcasts in flight.
 *
 * The members are bare sockets with a minimal WebSocket client, or socket.io 4 on it (bench/lib/member-socket.ts says
 * why), so the three servers face the same client code.
 *
 * IPC in: { type: 'connect', group, url, connections, mode, localAddresses } · { type: 'report', group } · { type: 'close' }
 * IPC out: { type: 'connected', group } · { type: 'got', group, seq } · { type: 'report', group, histogram, deliveries, bad }
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { type MemberMode, openMember } from '../lib/member-socket.js';
import { Histogram } from '../lib/stats.js';

type Mode = MemberMode;
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
  const last = { seq: -1 };
  return openMember(url, g.mode, localAddress, sockets, (text) => deliver(g, text, last));
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
