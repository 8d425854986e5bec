/**
 * The admin socket server. Mode 0600: only the user running the host can reload or read its status.
 */
import { lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { chmod } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { HotlineError, isHotlineError } from '../errors.js';
import { AdminConnection, type AdminHandler } from './admin-connection.js';
import { adminRequest } from './admin-client.js';

export type { AdminHandler };

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
    new AdminConnection(socket, this.#handler);
  }
}
