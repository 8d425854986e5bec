/**
 * P5 restart cost for clients: how many connected clients see their connection close because of one code update.
 * hotline swaps on a file save; the baselines are a plain `ws` echo server under `node --watch` (edit → restart)
 * and the same server in a PM2 cluster of 2 (`pm2 reload`, PM2_HOME in a temp dir, `pm2 kill` at the end).
 * Every client sends numbered messages throughout, so messages lost with the dropped connections are counted too.
 *
 *   node --import tsx bench/p5-restart-cost.bench.ts [--quick]
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { LoadGroup, type LoadResult } from './load-client.js';
import { WS_URL, echoPlugin, tempDir } from './lib/plugins.js';
import { forkTs, freePort, nextMessage, ofType, stopChild, waitForPort } from './lib/processes.js';
import { benchArgs, finish } from './lib/report.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const PM2_BIN = path.join(path.dirname(require.resolve('pm2/package.json')), 'bin', 'pm2');
const run = promisify(execFile);
const args = benchArgs();
const clients = args.quick ? 200 : 1000;
const rate = clients * 2;
// The update lands 1 s into the run; the run lasts long enough for a PM2 reload of both workers to finish.
const UPDATE_AT_MS = 1000;
const DURATION_MS = args.quick ? 5000 : 8000;

/** Run steady load on `url` and apply `update` during it. */
async function underLoad(url: string, update: () => Promise<void>): Promise<LoadResult> {
  const load = await LoadGroup.connect({ url, connections: clients, processes: 2 });
  try {
    const running = load.run({ mode: 'rate', rate, durationMs: DURATION_MS, drainMs: 1000 });
    await sleep(UPDATE_AT_MS);
    await update();
    return await running;
  } finally {
    await load.close();
  }
}

async function hotline(): Promise<LoadResult> {
  const dir = tempDir('p5-hotline');
  const plugin = dir.write('plugin.ts', echoPlugin('v0'));
  const server = forkTs(path.join(HERE, 'servers/hotline-server.ts'), [JSON.stringify({ plugin, watch: {} })]);
  try {
    const { url } = await nextMessage(server, ofType<{ type: 'ready'; url: string }>('ready'), 60_000, 'hotline server');
    return await underLoad(url, async () => {
      const swapped = nextMessage(server, ofType<{ type: 'swap' }>('swap'), 30_000, 'swap after save');
      dir.write('plugin.ts', echoPlugin('v1'));
      await swapped;
    });
  } finally {
    await stopChild(server);
    dir.remove();
  }
}

function plainServer(tag: string, cjs: boolean): string {
  const head = cjs ? `const WS = require(${JSON.stringify(fileURLToPath(WS_URL))});` : `import WS from '${WS_URL}';`;
  return `${head}
const wss = new WS.WebSocketServer({ host: '127.0.0.1', port: Number(process.env.PORT), perMessageDeflate: false });
wss.on('connection', (ws) => ws.on('message', (data) => ws.send('${tag}|' + String(data))));
`;
}

async function nodeWatch(): Promise<LoadResult> {
  const dir = tempDir('p5-node');
  const entry = dir.write('server.mjs', plainServer('v0', false));
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, ['--watch', entry], {
    cwd: dir.dir,
    env: { ...process.env, PORT: String(port) },
    stdio: 'ignore',
    detached: true,
  });
  try {
    await waitForPort(port, 30_000);
    return await underLoad(`ws://127.0.0.1:${port}`, async () => {
      dir.write('server.mjs', plainServer('v1', false));
      await waitForPort(port, 30_000);
    });
  } finally {
    // node --watch and the server it restarts share the process group we created.
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch {
      // already gone
    }
    if (child.exitCode === null && child.signalCode === null) await new Promise((resolve) => child.once('exit', resolve));
    dir.remove();
  }
}

async function pm2Cluster(): Promise<LoadResult> {
  const dir = tempDir('p5-pm2');
  const entry = dir.write('server.cjs', plainServer('v0', true));
  const port = await freePort();
  const env = { ...process.env, PM2_HOME: path.join(dir.dir, '.pm2'), PORT: String(port) };
  const pm2 = (...argv: string[]) => run(process.execPath, [PM2_BIN, ...argv], { env, timeout: 60_000 });
  try {
    await pm2('start', entry, '-i', '2', '--name', 'p5-bench', '--no-autorestart');
    await waitForPort(port, 30_000);
    return await underLoad(`ws://127.0.0.1:${port}`, async () => {
      dir.write('server.cjs', plainServer('v1', true));
      await pm2('reload', 'p5-bench');
    });
  } finally {
    await pm2('kill').catch(() => undefined);
    dir.remove();
  }
}

const hot = await hotline();
const nw = await nodeWatch();
const pm = await pm2Cluster();
const line = (r: LoadResult) => `${r.closed} of ${r.connections} closed, ${r.lost} messages lost`;
finish(args, {
  id: 'P5',
  title: 'restart cost for clients',
  quick: args.quick,
  rows: [
    {
      figure: `P5 clients dropped by one update (${clients} WS clients, ${rate.toLocaleString('en-US')} msg/s)`,
      hotline: line(hot),
      baseline: `node --watch: ${line(nw)}; PM2 cluster reload: ${line(pm)}`,
      ratio: '',
      target: 'hotline 0',
      met: hot.closed === 0 && hot.lost === 0,
    },
  ],
  zeroLoss: [
    { name: 'P5 hotline closed', count: hot.closed },
    { name: 'P5 hotline lost', count: hot.lost },
  ],
  notes: [`clients do not reconnect: a close is counted once per client. PM2 runs 2 cluster workers, default kill_timeout.`],
});
