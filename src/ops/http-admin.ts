/**
 * The HTTP admin listener (`--http-admin HOST:PORT`): Prometheus metrics, health and readiness, the dashboard, and a
 * JSON API behind a bearer token. The API runs the admin socket's own command table (the AdminHandler the host or
 * the supervisor gives its AdminServer), so `POST /api/reload` and `hotline reload` are one code path.
 *
 *   GET  /metrics          Prometheus text format (token needed when bound beyond loopback)
 *   GET  /healthz          200 while the process runs
 *   GET  /readyz           200 while serving (state "degraded" when a dependency such as NATS is down); 503 while
 *                          starting or shutting down
 *   GET  / , /dashboard.js the dashboard (no data in it: it calls the API with the token the user types)
 *   GET  /api/status       the status command
 *   GET  /api/history      the swaps (and, under a supervisor, the upgrades) of status
 *   POST /api/reload       body {} or {"force":true}
 *   POST /api/rollback, /api/upgrade
 *   GET  /api/events       Server-Sent Events (event-stream.ts)
 *
 * Every input is bounded and checked: header size and time (Node's headersTimeout, requestTimeout), bodies of
 * MAX_BODY_BYTES, the body's fields, the method per path, at most MAX_SOCKETS sockets. Refusals are coded JSON.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:net';
import type { AdminHandler } from '../admin/admin-connection.js';
import type { AdminCommand } from '../admin/protocol.js';
import { type ErrorCode, HotlineError, isHotlineError, messageOf } from '../errors.js';
import { BearerToken } from './bearer-token.js';
import { type DashboardAssets, loadDashboard } from './dashboard-assets.js';
import type { EventStream } from './event-stream.js';
import { type HttpAdminAddress, checkExposure, checkToken, formatHttpAdminAddress, isLoopback } from './http-address.js';

/** Largest request body read; a command body is a few bytes. */
export const MAX_BODY_BYTES = 4 * 1024;
/** Request headers larger than this are refused by Node with 431. */
export const MAX_HEADER_BYTES = 8 * 1024;
/** Sockets open at once; more are refused by Node (closed at accept). */
export const MAX_SOCKETS = 64;
/** Headers must arrive within this; the whole request (body included) within REQUEST_TIMEOUT_MS. */
export const HEADERS_TIMEOUT_MS = 5_000;
export const REQUEST_TIMEOUT_MS = 10_000;
/** Commands that change the server, by API path; status and history are reads. */
const COMMANDS: Readonly<Record<string, AdminCommand>> = { '/api/reload': 'reload', '/api/rollback': 'rollback', '/api/upgrade': 'upgrade' };

/** Readiness as /readyz reports it. */
export type Readiness = 'starting' | 'ready' | 'shutting-down';

export interface HttpAdminDeps {
  /** The admin socket's command table. */
  command: AdminHandler;
  /** The Prometheus exposition text. */
  metrics(): Promise<string>;
  readiness(): Readiness;
  /**
   * Whether each dependency is reachable, by name (`{ nats: false }`). A node whose NATS is down still serves (its
   * session writes wait locally), so /readyz stays 200 and says "degraded": taking the node out of a load balancer
   * would move its clients onto nodes that cannot reach NATS either.
   */
  dependencies?(): Promise<Record<string, boolean>>;
  events: EventStream;
}

export interface HttpAdminConfig {
  address: HttpAdminAddress;
  /** Bearer token of the JSON API. Without one the API answers 401, and only a loopback bind is allowed. */
  token?: string;
  /** @internal Tests: a shorter header timeout than HEADERS_TIMEOUT_MS. */
  headersTimeout?: number;
}

export class HttpAdmin {
  #config: HttpAdminConfig;
  #deps: HttpAdminDeps;
  #token: BearerToken;
  #server: http.Server | undefined;
  #sockets = new Set<Socket>();
  #dashboard: DashboardAssets;
  #closing: Promise<void> | undefined;

  /** Throws HOTLINE_E_HTTP_ADMIN (a bad token) or HOTLINE_E_HTTP_ADMIN_EXPOSED (beyond loopback without a token). */
  constructor(config: HttpAdminConfig, deps: HttpAdminDeps) {
    if (config.token !== undefined) checkToken(config.token, 'httpAdmin.token');
    checkExposure(config.address, config.token);
    this.#config = config;
    this.#deps = deps;
    this.#token = new BearerToken(config.token);
    this.#dashboard = loadDashboard();
  }

  /** Where it listens (the real port when 0 was asked for). */
  get address(): HttpAdminAddress {
    const a = this.#server?.address() as AddressInfo | null | undefined;
    return a ? { host: this.#config.address.host, port: a.port } : this.#config.address;
  }

  get url(): string {
    return `http://${formatHttpAdminAddress(this.address)}`;
  }

  async start(): Promise<void> {
    if (this.#server) return;
    const headersTimeout = this.#config.headersTimeout ?? HEADERS_TIMEOUT_MS;
    const options: http.ServerOptions = {
      maxHeaderSize: MAX_HEADER_BYTES,
      headersTimeout,
      requestTimeout: Math.max(REQUEST_TIMEOUT_MS, headersTimeout),
      // Node checks both timeouts only this often (its default is 30 s): a slow sender is cut off within about it.
      connectionsCheckingInterval: Math.min(1_000, headersTimeout),
    };
    const server = http.createServer(options, (req, res) => this.#onRequest(req, res));
    server.maxConnections = MAX_SOCKETS;
    server.keepAliveTimeout = 5_000;
    server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
    // A malformed or oversized request gets its status line, then the socket is closed (Node's default, kept).
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      if (socket.writable) socket.end(err.code === 'HPE_HEADER_OVERFLOW' ? 'HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n' : 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else socket.destroy();
    });
    const { host, port } = this.#config.address;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new HotlineError('HOTLINE_E_HTTP_ADMIN', `cannot listen for the HTTP admin on ${host}:${port}: ${err.message}`, { cause: err })));
      server.listen(port, host, () => resolve());
    });
    this.#server = server;
  }

  /** Close the listener, every stream and socket. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const server = this.#server;
    this.#deps.events.close();
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    await closed;
  }

  #onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.#route(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendError(res, 500, new HotlineError('HOTLINE_E_INTERNAL', `the HTTP admin failed: ${messageOf(err)}`));
      else res.destroy();
    });
  }

  async #route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const path = url.split('?', 1)[0]!;
    const method = req.method ?? 'GET';
    const read = method === 'GET' || method === 'HEAD';
    if (path === '/healthz') return read ? sendText(res, 200, 'ok\n') : methodNotAllowed(res, 'GET');
    if (path === '/readyz') {
      if (!read) return methodNotAllowed(res, 'GET');
      const r = this.#deps.readiness();
      const deps = (await this.#deps.dependencies?.()) ?? {};
      const down = Object.keys(deps).filter((name) => !deps[name]);
      const state = r === 'ready' && down.length > 0 ? 'degraded' : r;
      return sendJson(res, r === 'ready' ? 200 : 503, { ready: r === 'ready', state, ...(down.length > 0 && { degraded: down }), dependencies: deps });
    }
    if (path === '/metrics') {
      if (!read) return methodNotAllowed(res, 'GET');
      // Beyond loopback the numbers (versions, traffic) are for whoever holds the token; Prometheus sends it with
      // `authorization: { credentials_file: ... }` (docs/operations.md).
      if (!isLoopback(this.#config.address.host) && !this.#authorized(req, res)) return;
      const text = await this.#deps.metrics();
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'cache-control': 'no-store' });
      return void res.end(text);
    }
    if (path === '/' || path === '/dashboard' || path === '/dashboard.js') {
      if (!read) return methodNotAllowed(res, 'GET');
      const js = path === '/dashboard.js';
      res.writeHead(200, {
        'content-type': js ? 'text/javascript; charset=utf-8' : 'text/html; charset=utf-8',
        'cache-control': 'no-store',
        // The page runs only its own script and talks only to this listener.
        'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
      });
      return void res.end(js ? this.#dashboard.js : this.#dashboard.html);
    }
    if (!path.startsWith('/api/')) return sendError(res, 404, new HotlineError('HOTLINE_E_ADMIN_REQUEST', `no such path ${JSON.stringify(path.slice(0, 100))}`));
    if (!this.#authorized(req, res)) return;
    if (path === '/api/status' || path === '/api/history') {
      if (!read) return methodNotAllowed(res, 'GET');
      const status = await this.#run(res, 'status');
      if (status === NO_RESULT) return;
      return sendJson(res, 200, { ok: true, result: path === '/api/status' ? status : historyOf(status) });
    }
    if (path === '/api/events') {
      if (!read) return methodNotAllowed(res, 'GET');
      if (!this.#deps.events.subscribe(res)) sendError(res, 503, new HotlineError('HOTLINE_E_ADMIN_REQUEST', 'too many event stream subscribers'));
      return;
    }
    const cmd = COMMANDS[path];
    if (cmd === undefined) return sendError(res, 404, new HotlineError('HOTLINE_E_ADMIN_REQUEST', `no such API path ${JSON.stringify(path.slice(0, 100))}`));
    if (method !== 'POST') return methodNotAllowed(res, 'POST');
    const body = await readBody(req);
    if (typeof body !== 'string') return sendError(res, body.status, body.error);
    const force = parseCommandBody(body, cmd);
    if (force instanceof HotlineError) return sendError(res, 400, force);
    const result = await this.#run(res, cmd, force);
    if (result !== NO_RESULT) sendJson(res, 200, { ok: true, result });
  }

  /** Run a command of the table; on failure answer with its coded error and return NO_RESULT. */
  async #run(res: http.ServerResponse, cmd: AdminCommand, force = false): Promise<unknown> {
    try {
      return await this.#deps.command(cmd, { force });
    } catch (err) {
      const coded = isHotlineError(err) ? err : new HotlineError('HOTLINE_E_ADMIN', messageOf(err));
      sendError(res, statusOf(coded.code), coded);
      return NO_RESULT;
    }
  }

  /** 401 without a token (or none configured), 403 with a wrong one. */
  #authorized(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    const verdict = this.#token.check(req.headers.authorization);
    if (verdict === 'ok') return true;
    if (verdict === 'missing') {
      const why = this.#token.configured ? 'send Authorization: Bearer <token>' : 'this listener has no token configured (HOTLINE_ADMIN_TOKEN), so its API is off';
      res.setHeader('www-authenticate', 'Bearer realm="hotline"');
      sendError(res, 401, new HotlineError('HOTLINE_E_ADMIN_TOKEN', `the admin API needs a bearer token: ${why}`));
    } else sendError(res, 403, new HotlineError('HOTLINE_E_ADMIN_TOKEN', 'the bearer token is wrong'));
    return false;
  }
}

const NO_RESULT = Symbol('no result');

function statusOf(code: ErrorCode): number {
  switch (code) {
    case 'HOTLINE_E_UPGRADE_IN_PROGRESS':
    case 'HOTLINE_E_NO_PREVIOUS':
    case 'HOTLINE_E_OPERATION_TIMEOUT':
      return 409;
    case 'HOTLINE_E_SWAP_CLOSED':
    case 'HOTLINE_E_WORKER_EXIT':
      return 503;
    case 'HOTLINE_E_CONFIG':
      return 501;
    default:
      return 422;
  }
}

function historyOf(status: unknown): unknown {
  const s = status as { swaps?: unknown; supervisor?: { upgrades?: unknown } };
  return { swaps: s.swaps ?? [], upgrades: s.supervisor?.upgrades ?? [] };
}

interface BodyRefusal {
  status: number;
  error: HotlineError;
}

const tooLong = (): BodyRefusal => ({ status: 413, error: new HotlineError('HOTLINE_E_ADMIN_REQUEST', `the request body is longer than ${MAX_BODY_BYTES} bytes`) });

/** Read a body of at most MAX_BODY_BYTES, as text; the refusal otherwise. */
function readBody(req: http.IncomingMessage): Promise<string | BodyRefusal> {
  if (Number(req.headers['content-length'] ?? 0) > MAX_BODY_BYTES) {
    req.resume();
    return Promise.resolve(tooLong());
  }
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        req.removeAllListeners('data');
        req.resume();
        resolve(tooLong());
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', (err) => resolve({ status: 400, error: new HotlineError('HOTLINE_E_ADMIN_REQUEST', `the request body could not be read: ${err.message}`) }));
  });
}

/** An empty body, `{}`, or (reload only) `{"force": boolean}`: the force flag, or the coded refusal. */
export function parseCommandBody(body: string, cmd: AdminCommand): boolean | HotlineError {
  if (body.trim() === '') return false;
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    return new HotlineError('HOTLINE_E_ADMIN_REQUEST', 'the request body is not JSON');
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return new HotlineError('HOTLINE_E_ADMIN_REQUEST', 'the request body must be a JSON object');
  const keys = Object.keys(v);
  const extra = keys.find((k) => k !== 'force');
  if (extra !== undefined) return new HotlineError('HOTLINE_E_ADMIN_REQUEST', `unknown body field ${JSON.stringify(extra.slice(0, 64))}`);
  const force = (v as { force?: unknown }).force;
  if (force === undefined) return false;
  if (typeof force !== 'boolean' || cmd !== 'reload') return new HotlineError('HOTLINE_E_ADMIN_REQUEST', '`force` is a boolean, and only for reload');
  return force;
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  let text: string;
  try {
    text = JSON.stringify(body);
  } catch (err) {
    status = 500;
    text = JSON.stringify({ ok: false, error: { code: 'HOTLINE_E_ADMIN', message: `the answer is not JSON: ${messageOf(err)}` } });
  }
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(text + '\n');
}

function sendText(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  res.end(text);
}

function sendError(res: http.ServerResponse, status: number, err: HotlineError): void {
  sendJson(res, status, { ok: false, error: err.toJSON() });
}

function methodNotAllowed(res: http.ServerResponse, allow: string): void {
  res.setHeader('allow', allow);
  sendError(res, 405, new HotlineError('HOTLINE_E_ADMIN_REQUEST', `use ${allow} here`));
}
