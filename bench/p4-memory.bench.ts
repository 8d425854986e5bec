/**
 * P4 memory: heap after forced GC after many swaps of a ~200 KB plugin vs after 10. hotline reloads through
 * createHost + host.reload() (esbuild, vm.compileFunction, migrate, dispose); the baseline reloads the same module
 * the naive way, `import(url + '?v=' + n)`, which keeps every version alive (DESIGN.md §4). Each side runs in its own
 * process with --expose-gc; the file is rewritten with a new version before every reload.
 *
 *   node --import tsx bench/p4-memory.bench.ts [--quick]
 */
import { writeFileSync } from 'node:fs';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { bigModule, tempDir } from './lib/plugins.js';
import { forkTs, nextMessage, ofType, stopChild } from './lib/processes.js';
import { benchArgs, finish } from './lib/report.js';

const SELF = fileURLToPath(import.meta.url);
const EARLY = 10;

interface Measured {
  type: 'measured';
  early: number;
  late: number;
  swaps: number;
  bytes: number;
  msPerSwap: number;
}

async function heapAfterGc(): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  // Several rounds with a turn of the event loop between them, so finalizers and weak callbacks run too.
  for (let k = 0; k < 4; k++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  return process.memoryUsage().heapUsed;
}

/** The measuring child: reload `swaps` times one way, report heap after 10 and after all. */
async function child(role: 'hotline' | 'esm', swaps: number): Promise<void> {
  const dir = tempDir(`p4-${role}`);
  let early = 0;
  let bytes = 0;
  const t0 = performance.now();
  try {
    if (role === 'hotline') {
      const { createHost } = await import('../src/index.js');
      const pino = (await import('pino')).default;
      const entry = dir.write('plugin.ts', bigModule(0, 'plugin'));
      bytes = bigModule(0, 'plugin').length;
      const host = await createHost({ plugin: entry, probation: false, logger: pino({ level: 'error' }) });
      try {
        for (let i = 1; i <= swaps; i++) {
          writeFileSync(entry, bigModule(i, 'plugin'));
          const r = await host.reload();
          if (r.outcome !== 'switched') throw new Error(`swap ${i} ${r.outcome}`);
          if (i === EARLY) early = await heapAfterGc();
        }
      } finally {
        await host.close();
      }
    } else {
      const file = dir.write('module.mjs', bigModule(0, 'esm'));
      bytes = bigModule(0, 'esm').length;
      const url = pathToFileURL(file).href;
      let sink = 0;
      for (let i = 1; i <= swaps; i++) {
        writeFileSync(file, bigModule(i, 'esm'));
        const mod = (await import(`${url}?v=${i}`)) as { default: { handle: (x: string) => number } };
        sink += mod.default.handle('x');
        if (i === EARLY) early = await heapAfterGc();
      }
      if (sink === 0) throw new Error('the module did no work');
    }
    const msPerSwap = (performance.now() - t0) / swaps;
    const late = await heapAfterGc();
    process.send!({ type: 'measured', early, late, swaps, bytes, msPerSwap } satisfies Measured);
  } finally {
    dir.remove();
  }
}

async function measure(role: 'hotline' | 'esm', swaps: number): Promise<Measured> {
  const c = forkTs(SELF, [], { nodeFlags: ['--expose-gc'], env: { HOTLINE_P4_ROLE: role, HOTLINE_P4_SWAPS: String(swaps) } });
  try {
    return await nextMessage(c, ofType<Measured>('measured'), 600_000, `P4 ${role}`);
  } finally {
    await stopChild(c);
  }
}

async function main(): Promise<void> {
  const args = benchArgs();
  const swaps = args.quick ? 100 : 1000;
  const hot = await measure('hotline', swaps);
  const esm = await measure('esm', swaps);
  const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;
  const growth = (m: Measured) => ((m.late - m.early) / m.early) * 100;
  const pct = (g: number) => `${g >= 0 ? '+' : ''}${g.toFixed(1)}%`;
  const gh = growth(hot);
  const ge = growth(esm);
  finish(args, {
    id: 'P4',
    title: 'memory',
    quick: args.quick,
    rows: [
      {
        figure: `P4 heap after GC, ${swaps.toLocaleString('en-US')} swaps vs ${EARLY} (${Math.round(hot.bytes / 1024)} KB plugin)`,
        hotline: `${mb(hot.early)} → ${mb(hot.late)} (${pct(gh)})`,
        baseline: `ESM import(?v=n): ${mb(esm.early)} → ${mb(esm.late)} (${pct(ge)})`,
        ratio: `${mb(hot.late - hot.early)} vs ${mb(esm.late - esm.early)} grown`,
        target: '≤ +5%',
        met: gh <= 5,
      },
      {
        figure: 'P4 time per reload (write + reload)',
        hotline: `${hot.msPerSwap.toFixed(1)} ms (esbuild + compile + swap)`,
        baseline: `ESM import: ${esm.msPerSwap.toFixed(1)} ms`,
        ratio: '',
        target: '',
      },
    ],
    zeroLoss: [],
    notes: [`each side in its own process with --expose-gc; heap = process.memoryUsage().heapUsed after 4 forced GCs.`],
  });
}

const role = process.env.HOTLINE_P4_ROLE;
if (role === 'hotline' || role === 'esm') await child(role, Number(process.env.HOTLINE_P4_SWAPS));
else await main();
