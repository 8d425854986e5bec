/**
 * R2's hostile clients (bench/r2-hostile.bench.ts), in their own process at a lower CPU priority (nice 10): on a real
 * deployment an attacker's CPU is its own machine's, and here, on the same 2 cores, it would otherwise measure the
 * machine rather than the host. How hard they attacked is in the counts they report.
 *
 * Started with one JSON argument: { wsUrl, tcpUrl, only? }. Sends { type: 'started' }; on { type: 'stop' } it
 * closes everything and answers { type: 'stopped', counts }.
 */
import net from 'node:net';
import os from 'node:os';
import WebSocket from 'ws';

export interface HostileCounts {
  flooded: number;
  truncated: number;
  fragmented: number;
  helloDrops: number;
}

export type HostileKind = 'flood' | 'truncated' | 'fragments' | 'hello';

const MiB = 1024 * 1024;
const PARTIAL = 256 * 1024;
const HOLDERS = 50;
/** Each kind from its own loopback address, as one hostile client would be. */
export const HOSTILE_FROM = { flood: '127.0.1.1', truncated: '127.0.1.2', fragments: '127.0.1.3', helloDrop: '127.0.1.4' };
/**
 * The hostile WebSockets mask with zeros, which ws then skips (the host still unmasks every byte): an attacker does
 * not pay for masking.
 */
const ZERO_MASK = (mask: Buffer): void => void mask.fill(0);

/** The four hostile clients, each a loop that runs until stop(). */
class Hostiles {
  #stopped = false;
  #sockets = new Set<net.Socket | WebSocket>();
  #loops: Promise<void>[] = [];
  counts: HostileCounts = { flooded: 0, truncated: 0, fragmented: 0, helloDrops: 0 };

  /** `only`: the kinds to run, comma-separated (all when absent). */
  constructor(wsUrl: string, tcpUrl: string, only: string | undefined) {
    const tcp = new URL(tcpUrl);
    const kinds = only?.split(',');
    const on = (kind: HostileKind): boolean => !kinds || kinds.includes(kind);
    if (on('flood')) this.#loops.push(this.#flood(wsUrl));
    for (let i = 0; i < HOLDERS; i++) {
      if (on('truncated')) this.#loops.push(this.#truncated(Number(tcp.port)));
      if (on('fragments')) this.#loops.push(this.#fragments(wsUrl));
    }
    if (on('hello')) for (let i = 0; i < 20; i++) this.#loops.push(this.#helloDrop(wsUrl));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const s of this.#sockets) {
      if (s instanceof net.Socket) s.destroy();
      else s.terminate();
    }
    await Promise.all(this.#loops);
  }

  async #flood(url: string): Promise<void> {
    const frame = 'F'.repeat(1024);
    while (!this.#stopped) {
      const ws = await this.#open(url, HOSTILE_FROM.flood).catch(() => undefined);
      if (!ws) {
        await sleep(10);
        continue;
      }
      while (!this.#stopped && ws.readyState === WebSocket.OPEN) {
        for (let n = 0; n < 256 && ws.bufferedAmount < MiB; n++, this.counts.flooded++) ws.send(frame);
        await sleep(1);
      }
      ws.terminate();
    }
  }

  async #truncated(port: number): Promise<void> {
    const frame = Buffer.alloc(4 + PARTIAL, 0x61);
    frame.writeUInt32BE(MiB - 1, 0);
    while (!this.#stopped) {
      const s = net.connect({ port, host: '127.0.0.1', localAddress: HOSTILE_FROM.truncated });
      this.#sockets.add(s);
      s.on('error', () => undefined);
      const closed = new Promise((resolve) => s.once('close', resolve));
      s.once('connect', () => s.write(frame));
      this.counts.truncated++;
      await closed;
      this.#sockets.delete(s);
      await sleep(10);
    }
  }

  async #fragments(url: string): Promise<void> {
    const part = Buffer.alloc(64 * 1024, 0x62);
    while (!this.#stopped) {
      const ws = await this.#open(url, HOSTILE_FROM.fragments).catch(() => undefined);
      if (!ws) {
        await sleep(10);
        continue;
      }
      const closed = new Promise((resolve) => ws.once('close', resolve));
      for (let i = 0; i < PARTIAL / part.length; i++) ws.send(part, { fin: false });
      this.counts.fragmented++;
      await closed;
      await sleep(10);
    }
  }

  async #helloDrop(url: string): Promise<void> {
    while (!this.#stopped) {
      const ws = await this.#open(url, HOSTILE_FROM.helloDrop, 'hotline.v1').catch(() => undefined);
      if (!ws) {
        await sleep(10);
        continue;
      }
      ws.send(JSON.stringify({ t: 'hello', v: 1, token: null, rx: 0 }));
      ws.terminate();
      this.counts.helloDrops++;
      await sleep(5);
    }
  }

  #open(url: string, localAddress: string, protocol?: string): Promise<WebSocket> {
    const ws = new WebSocket(url, protocol, { perMessageDeflate: false, localAddress, generateMask: ZERO_MASK });
    this.#sockets.add(ws);
    ws.on('error', () => undefined);
    ws.once('close', () => this.#sockets.delete(ws));
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(ws));
      ws.once('close', () => reject(new Error('closed before open')));
    });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const config = JSON.parse(process.argv[2] ?? '{}') as { wsUrl: string; tcpUrl: string; only?: string };
os.setPriority(10);
const hostiles = new Hostiles(config.wsUrl, config.tcpUrl, config.only);
process.send?.({ type: 'started' });
process.on('message', (m: { type?: string }) => {
  if (m.type !== 'stop') return;
  void hostiles.stop().then(() => {
    process.send?.({ type: 'stopped', counts: hostiles.counts }, () => process.exit(0));
  });
});
// A bench that dies (a timeout, a failed run) must not leave the attack running: it would load every later run.
process.on('disconnect', () => process.exit(0));
