/**
 * The admin socket server. Mode 0600: only the user running the host can reload or read its status.
 */
import { lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { chmod } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { HotlineError, isHotlineError, messageOf } from '../errors.js';
import type { AdminCommand, AdminOptions, AdminRequest, AdminResponse } from './protocol.js';
import { adminRequest } from './admin-client.js';

export type AdminHandler = (cmd: AdminCommand, options: AdminOptions) => Promise<unknown>;

/** Longest request line accepted; a request is a few dozen bytes. */
const MAX_LINE = 64 * 1024;

export class AdminServer {
  #path: string;
  #handler: AdminHandler;
  #server: net.Server | undefined;
  #sockets = new Set<net.Socket>();

  constructor(socketPath: string, handler: AdminHandler) {
    this.#path = path.resolve(socketPath);
    this.#handler = handler;
  }

  get path(): string {
    return this.#path;
  }

  async start(): Promise<void> {
    mkdirSync(path.dirname(this.#path), { recursive: true, mode: 0o700 });
    await this.#clearStale();
    const server = net.createServer((socket) => this.#onConnection(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) =>
        reject(new HotlineError('HOTLINE_E_ADMIN', `cannot listen on admin socket ${this.#path}: ${err.message}`, { cause: err })),
      );
      server.listen(this.#path, () => resolve());
    });
    await chmod(this.#path, 0o600);
    this.#server = server;
  }

  async close(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** A socket file left by a crashed host is removed; one a live host answers on is an error. */
  async #clearStale(): Promise<void> {
    let stat;
    try {
      stat = lstatSync(this.#path);
    } catch {
      return; // No file: nothing stale.
    }
    // Only a socket can be stale. Anything else at this path is the user's file: never delete it.
    if (!stat.isSocket()) {
      throw new HotlineError('HOTLINE_E_ADMIN', `admin socket path ${this.#path} exists and is not a socket; refusing to replace it`);
    }
    try {
      await adminRequest(this.#path, 'status', 1000);
    } catch (err) {
      if (isHotlineError(err, 'HOTLINE_E_ADMIN_UNREACHABLE')) {
        try {
          unlinkSync(this.#path);
        } catch {
          // No file: nothing stale.
        }
        return;
      }
    }
    throw new HotlineError('HOTLINE_E_ADMIN', `another hotline host is already serving the admin socket ${this.#path}`);
  }

  #onConnection(socket: net.Socket): void {
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let buf = '';
    // Requests are answered in order even when a later one finishes first (a status during a reload).
    let chain = Promise.resolve();
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_LINE) return socket.destroy();
      let nl: number;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        chain = chain.then(() => this.#answer(socket, line));
      }
    });
  }

  async #answer(socket: net.Socket, line: string): Promise<void> {
    let req: AdminRequest;
    try {
      req = JSON.parse(line) as AdminRequest;
    } catch {
      return write(socket, { id: 0, ok: false, error: { code: 'HOTLINE_E_ADMIN', message: 'the request is not JSON' } });
    }
    if (req.cmd !== 'reload' && req.cmd !== 'rollback' && req.cmd !== 'status' && req.cmd !== 'upgrade') {
      return write(socket, { id: req.id, ok: false, error: { code: 'HOTLINE_E_ADMIN', message: `unknown command ${String(req.cmd)}` } });
    }
    try {
      write(socket, { id: req.id, ok: true, result: await this.#handler(req.cmd, { force: req.force === true }) });
    } catch (err) {
      const error = isHotlineError(err) ? err.toJSON() : { code: 'HOTLINE_E_ADMIN', message: messageOf(err) };
      write(socket, { id: req.id, ok: false, error });
    }
  }
}

function write(socket: net.Socket, res: AdminResponse): void {
  if (!socket.destroyed) socket.write(JSON.stringify(res) + '\n');
}
