/**
 * One admin socket connection: splits its byte stream into request lines, answers them one at a time and in order,
 * and keeps what it holds bounded whatever the client does (issue 9):
 * - a line longer than MAX_ADMIN_LINE is answered with HOTLINE_E_ADMIN_REQUEST and skipped up to its newline, so
 *   neither the buffer nor the connection is lost to it;
 * - a client that pipelines requests faster than they are answered (or never reads its answers) is paused: TCP
 *   backpressure, lossless, instead of a promise chain and a write buffer that grow with every line.
 */
import type net from 'node:net';
import { HotlineError, isHotlineError, messageOf } from '../errors.js';
import { type AdminCommand, type AdminOptions, type AdminResponse, MAX_ADMIN_LINE, parseAdminRequest } from './protocol.js';

export type AdminHandler = (cmd: AdminCommand, options: AdminOptions) => Promise<unknown>;

/** Lines read and not yet answered past which the socket stops reading; one read of 64 KiB can hold thousands. */
export const MAX_PENDING_REQUESTS = 64;

export class AdminConnection {
  #socket: net.Socket;
  #handler: AdminHandler;
  #buf = '';
  /** Inside a line already refused as too long: drop everything up to its newline. */
  #skipping = false;
  /** Lines read and not yet answered, in order; a string, or the reply already decided for a too-long line. */
  #lines: Array<string | AdminResponse> = [];
  #answering = false;
  #closed = false;
  #wake: (() => void) | undefined;

  constructor(socket: net.Socket, handler: AdminHandler) {
    this.#socket = socket;
    this.#handler = handler;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.#onData(chunk));
    socket.on('drain', () => this.#resumeAnswering());
    socket.on('close', () => {
      this.#closed = true;
      this.#lines = [];
      this.#resumeAnswering();
    });
  }

  /** Requests read and not yet answered (for tests and status). */
  get pending(): number {
    return this.#lines.length;
  }

  /** True while a request is read and its answer not yet written. */
  get busy(): boolean {
    return this.#answering || this.#lines.length > 0;
  }

  #onData(chunk: string): void {
    let start = 0;
    if (this.#skipping) {
      const nl = chunk.indexOf('\n');
      if (nl === -1) return;
      this.#skipping = false;
      start = nl + 1;
    }
    let nl: number;
    while ((nl = chunk.indexOf('\n', start)) !== -1) {
      const line = this.#buf + chunk.slice(start, nl);
      this.#buf = '';
      start = nl + 1;
      this.#lines.push(line);
    }
    this.#buf += chunk.slice(start);
    if (this.#buf.length > MAX_ADMIN_LINE) {
      this.#buf = '';
      this.#skipping = true;
      const error = new HotlineError('HOTLINE_E_ADMIN_REQUEST', `the request line is longer than ${MAX_ADMIN_LINE} characters`);
      this.#lines.push({ id: 0, ok: false, error: error.toJSON() });
    }
    if (this.#lines.length >= MAX_PENDING_REQUESTS) this.#socket.pause();
    void this.#answerAll();
  }

  async #answerAll(): Promise<void> {
    if (this.#answering) return;
    this.#answering = true;
    while (!this.#closed && this.#lines.length > 0) {
      // A client that does not read its answers: wait for it rather than buffer them all in this process.
      if (this.#socket.writableNeedDrain) await new Promise<void>((resolve) => (this.#wake = resolve));
      const next = this.#lines.shift();
      if (next === undefined || this.#closed) break;
      const res = typeof next === 'string' ? await this.#answer(next) : next;
      if (!this.#socket.destroyed) this.#socket.write(encode(res));
      if (this.#lines.length < MAX_PENDING_REQUESTS / 2 && this.#socket.isPaused() && !this.#closed) this.#socket.resume();
    }
    this.#answering = false;
  }

  async #answer(line: string): Promise<AdminResponse> {
    const req = parseAdminRequest(line);
    if ('error' in req) return { id: req.id, ok: false, error: req.error.toJSON() };
    try {
      return { id: req.id, ok: true, result: await this.#handler(req.cmd, { force: req.force === true, ...(req.policy !== undefined && { policy: req.policy }) }) };
    } catch (err) {
      return { id: req.id, ok: false, error: isHotlineError(err) ? err.toJSON() : { code: 'HOTLINE_E_ADMIN', message: messageOf(err) } };
    }
  }

  #resumeAnswering(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

function encode(res: AdminResponse): string {
  try {
    return JSON.stringify(res) + '\n';
  } catch (err) {
    // A result that is not JSON (a cycle, a BigInt) is the handler's bug: the client still gets an answer.
    return JSON.stringify({ id: res.id, ok: false, error: { code: 'HOTLINE_E_ADMIN', message: `the answer is not JSON: ${messageOf(err)}` } }) + '\n';
  }
}
