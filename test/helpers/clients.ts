/**
 * Real clients for tests: a WebSocket client and a TCP line client, each with an inbox that a test can await.
 */
import net from 'node:net';
import tls from 'node:tls';
import WebSocket, { type ClientOptions } from 'ws';

/** Messages received, and a way to await the next ones. */
export class Inbox {
  readonly messages: string[] = [];
  #waiters: Array<{ n: number; resolve: () => void }> = [];

  push(m: string): void {
    this.messages.push(m);
    this.#waiters = this.#waiters.filter((w) => {
      if (this.messages.length >= w.n) w.resolve();
      return this.messages.length < w.n;
    });
  }

  /** Resolve once `n` messages in total have arrived; reject after `timeoutMs`. */
  waitFor(n: number, timeoutMs = 10_000): Promise<void> {
    if (this.messages.length >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`waited for ${n} messages, got ${this.messages.length}`)), timeoutMs);
      this.#waiters.push({ n, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }

  /** The next message after those already seen. */
  async next(timeoutMs = 10_000): Promise<string> {
    const n = this.messages.length + 1;
    await this.waitFor(n, timeoutMs);
    return this.messages[n - 1]!;
  }
}

export interface WsClient {
  ws: WebSocket;
  inbox: Inbox;
  /** Resolves with the close code when the socket closes. */
  closed: Promise<{ code: number; reason: string }>;
  send(data: string | Buffer): void;
}

/** `options`: e.g. `{ ca }` to trust a test certificate for a wss:// URL. */
export async function wsClient(url: string, options?: ClientOptions): Promise<WsClient> {
  const ws = new WebSocket(url, options);
  const inbox = new Inbox();
  ws.on('message', (data, isBinary) => inbox.push(isBinary ? Buffer.from(data as Buffer).toString('hex') : String(data)));
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, inbox, closed, send: (d) => ws.send(d) };
}

export interface TcpClient {
  socket: net.Socket;
  inbox: Inbox;
  /** Resolves when the socket closes. */
  closed: Promise<void>;
  send(line: string): void;
}

/** A newline-framed TCP client; over TLS with `tlsOptions` (e.g. `{ ca }` to trust a test certificate). */
export async function tcpClient(port: number, host = '127.0.0.1', tlsOptions?: tls.ConnectionOptions): Promise<TcpClient> {
  const socket = tlsOptions ? tls.connect({ ...tlsOptions, port, host }) : net.connect(port, host);
  const inbox = new Inbox();
  let buf = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) !== -1) {
      inbox.push(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
  });
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    socket.once(tlsOptions ? 'secureConnect' : 'connect', () => resolve());
    socket.once('error', reject);
  });
  return { socket, inbox, closed, send: (line) => socket.write(line + '\n') };
}

/**
 * Try one WebSocket upgrade: 101 when it is accepted (the socket is pushed to `keep`, or closed at once without it),
 * else the refusal's HTTP status (0: no HTTP answer at all, e.g. the socket was closed).
 */
export function upgradeStatus(url: string, options: { protocols?: string[]; localAddress?: string; keep?: WebSocket[] } = {}): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, options.protocols, { localAddress: options.localAddress });
    ws.once('open', () => {
      if (options.keep) options.keep.push(ws);
      else ws.terminate();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
    });
    ws.once('error', () => resolve(0));
  });
}

export { until } from './until.js';
