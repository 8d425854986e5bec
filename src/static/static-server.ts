/**
 * A tiny static file server for `--static DIR`: the demo page and the WebSocket share one port, the same way an app
 * attaches hotline to its own http.Server.
 */
import { createReadStream, statSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { isServiceGone, replaceService, serviceGeneration } from '../build/esbuild-service.js';
import { type TlsOptions, loadTls } from '../transport/tls.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/** Where a page finds `hotline/client` (unless its folder has a file of that name): `window.hotline.connect(url)`. */
export const CLIENT_SCRIPT_PATH = '/hotline-client.js';

const here = fileURLToPath(import.meta.url);
/** dist/client/browser.js when run from dist/, src/client/browser.ts when run from sources through tsx (tests). */
const CLIENT_ENTRY = path.join(path.dirname(here), '..', 'client', 'browser' + path.extname(here));

let clientBundle: Promise<string> | undefined;

/**
 * The browser client as one classic script defining the global `hotline`, bundled once per process on first request.
 * Built rather than committed, so the page can never run a client older than the server it talks to.
 */
function browserClient(): Promise<string> {
  if (clientBundle) return clientBundle;
  const build = () =>
    esbuild
      .build({ entryPoints: [CLIENT_ENTRY], bundle: true, write: false, format: 'iife', globalName: 'hotline', platform: 'browser', target: 'es2020', logLevel: 'silent' })
      .then((r) => r.outputFiles[0]!.text);
  const seen = serviceGeneration();
  // esbuild's service process may have been killed with the process group (build/esbuild-service.ts): once more.
  const p = build().catch(async (err: unknown) => {
    if (!isServiceGone(err)) throw err;
    await replaceService(seen);
    return build();
  });
  // A failed build is retried on the next request rather than cached.
  p.catch(() => (clientBundle = undefined));
  clientBundle = p;
  return p;
}

/** The page server of `--static`; HTTPS with `tls` (the WebSocket listener it carries is then wss://). */
export function createStaticServer(dir: string, tls?: TlsOptions): http.Server {
  const root = path.resolve(dir);
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === CLIENT_SCRIPT_PATH && !isFile(path.join(root, CLIENT_SCRIPT_PATH))) {
      browserClient().then(
        (js) => res.writeHead(200, { 'content-type': TYPES['.js']!, 'cache-control': 'no-cache' }).end(js),
        (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`cannot bundle the hotline client: ${String(err)}\n`),
      );
      return;
    }
    const rel = decodeURIComponent(url.pathname === '/' ? '/index.html' : url.pathname);
    const file = path.resolve(root, '.' + rel);
    // Never serve outside the folder, whatever the URL says.
    if (!file.startsWith(root + path.sep)) {
      res.writeHead(403).end();
      return;
    }
    try {
      if (!statSync(file).isFile()) throw new Error('not a file');
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-cache' });
    createReadStream(file).pipe(res);
  };
  return tls ? https.createServer(loadTls(tls, '--tls-cert/--tls-key'), onRequest) : http.createServer(onRequest);
}

function isFile(file: string): boolean {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}
