/**
 * Runs every benchmark, one child process at a time, and prints one markdown table. Exits 1 if a zero-loss count
 * (the hotline rows of P3, P5, R1 and U1) is not zero or a bench failed to report; never on a timing target.
 *
 *   npm run bench [-- --quick] [-- --only P1,P3] [-- --write-docs] [-- --jobs 2]
 *
 * `--jobs N` runs N benches at once, each one's output printed when it ends. Only for `--quick` (CI, where the
 * figures are not read: a quick run is there so no bench rots); a figure of record is measured one bench at a time.
 * Benches that share a service (`uses`) never run at the same time.
 *
 * To add a figure, add one line to BENCHES (see docs/benchmarks.md, "Adding a figure").
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { machine, renderDocs } from './lib/docs.js';
import { fdLimit, forkTs } from './lib/processes.js';
import { type BenchResult, markdownTable, violations } from './lib/report.js';

export interface BenchEntry {
  id: string;
  /** Relative to bench/. */
  file: string;
  title: string;
  /** A service the bench's setup owns names in (streams, buckets): two benches using the same one run apart. */
  uses?: 'nats';
}

/** The figures, in table order. One line per bench file. */
export const BENCHES: BenchEntry[] = [
  { id: 'P1', file: 'p1-swap-latency.bench.ts', title: 'swap latency' },
  { id: 'P2', file: 'p2-throughput.bench.ts', title: 'throughput' },
  { id: 'P3', file: 'p3-continuity.bench.ts', title: 'continuity at scale' },
  { id: 'P4', file: 'p4-memory.bench.ts', title: 'memory' },
  { id: 'P5', file: 'p5-restart-cost.bench.ts', title: 'restart cost for clients' },
  { id: 'R1', file: 'resume.bench.ts', title: 'resume after restart' },
  { id: 'U1', file: 'upgrade.bench.ts', title: 'process upgrade' },
  { id: 'R2', file: 'r2-hostile.bench.ts', title: 'hostile clients' },
  { id: 'H2', file: 'h2-inline-hang.bench.ts', title: 'a hang in inline mode' },
  // issue 11: worker isolation
  { id: 'P2w', file: 'p2w-worker.bench.ts', title: 'worker isolation throughput' },
  { id: 'H1', file: 'h1-worker-hang.bench.ts', title: 'hang in worker mode' },
  { id: 'M1', file: 'm1-metrics.bench.ts', title: 'metrics cost' },
  { id: 'C1', file: 'c1-fanout.bench.ts', title: 'room fan-out on one node' },
  // issue 15: links
  { id: 'L1', file: 'l1-link-relay.bench.ts', title: 'link relay across swaps' },
  // issue 13: rooms and sessions across nodes on NATS
  { id: 'C2', file: 'c2-cross-node.bench.ts', title: 'rooms across 3 nodes', uses: 'nats' },
  { id: 'C3', file: 'c3-failover.bench.ts', title: 'failover: kill -9 of one of 3 nodes', uses: 'nats' },
  // issue 12: several live versions
  { id: 'V1', file: 'v1-routing.bench.ts', title: 'version routing' },
];

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.dirname(HERE);

/**
 * Run one bench file in its own process; resolves with its report, or undefined if it produced none. `log` gets
 * what the run prints: at once when `piped` is false, in one piece at the end when true.
 */
async function runOne(entry: BenchEntry, quick: boolean, reportFile: string, piped: boolean, log: (text: string) => void): Promise<BenchResult | undefined> {
  const file = path.join(HERE, entry.file);
  if (!existsSync(file)) {
    log(`${entry.id}: ${entry.file} does not exist`);
    return undefined;
  }
  // Full runs get 20 minutes per bench at most, quick ones 5: a hung bench must not hang CI.
  const limitMs = quick ? 5 * 60_000 : 20 * 60_000;
  const child = forkTs(file, [...(quick ? ['--quick'] : []), '--report', reportFile], {
    nodeFlags: ['--expose-gc'],
    stdout: piped ? 'pipe' : true,
    fds: 65_536,
  });
  // Piped output is kept to print at the end; a bench prints a few KiB, but a runaway one must not grow this.
  let output = '';
  const keep = (chunk: Buffer) => {
    if (output.length < 1 << 20) output += chunk.toString('utf8');
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const timer = setTimeout(() => {
    output += `${entry.id}: no result after ${limitMs / 60_000} minutes, killing it\n`;
    if (!piped) log(output);
    child.kill('SIGKILL');
  }, limitMs);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  // A grandchild the bench left behind can hold the pipe open: wait for its end, but not for ever.
  if (child.stdout && !child.stdout.readableEnded) await Promise.race([once(child.stdout, 'end'), sleep(2000)]).catch(() => undefined);
  if (piped) log(output.trimEnd());
  if (!existsSync(reportFile)) {
    log(`${entry.id}: exited with ${code} and no report`);
    return undefined;
  }
  return JSON.parse(readFileSync(reportFile, 'utf8')) as BenchResult;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      'write-docs': { type: 'boolean', default: false },
      only: { type: 'string' },
      jobs: { type: 'string', default: '1' },
    },
  });
  const quick = values.quick === true;
  const jobs = Number(values.jobs);
  if (!Number.isInteger(jobs) || jobs < 1 || (jobs > 1 && !quick)) {
    console.error(`--jobs must be an integer >= 1, and above 1 only with --quick (got ${values.jobs})`);
    process.exit(2);
  }
  const only = values.only?.split(',').map((s) => s.trim().toUpperCase());
  const selected = BENCHES.filter((b) => !only || only.includes(b.id.toUpperCase()));
  const { soft, hard } = fdLimit();
  console.log(`hotline benchmarks${quick ? ' (quick)' : ''}: ${selected.map((b) => b.id).join(', ')}; fd limit soft ${soft}, hard ${hard}`);

  const started = performance.now();
  const tmp = mkdtempSync(path.join(tmpdir(), 'hotline-bench-run-'));
  const results = new Map<BenchEntry, BenchResult>();
  const failed: string[] = [];
  const waiting = [...selected];
  const running = new Set<BenchEntry>();
  const next = (): BenchEntry | undefined => {
    const i = waiting.findIndex((b) => b.uses === undefined || ![...running].some((r) => r.uses === b.uses));
    return i < 0 ? undefined : waiting.splice(i, 1)[0];
  };
  const lane = async (): Promise<void> => {
    for (let b = next(); b !== undefined; b = next()) {
      running.add(b);
      const t0 = performance.now();
      const header = `\n=== ${b.id} ${b.title} (${b.file})`;
      if (jobs === 1) console.log(header);
      const r = await runOne(b, quick, path.join(tmp, `${b.id}.json`), jobs > 1, (text) => console.log(jobs > 1 ? `${header}\n${text}` : text));
      console.log(`=== ${b.id} took ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      running.delete(b);
      if (r) results.set(b, r);
      else failed.push(`${b.id} failed`);
    }
  };
  try {
    // A lane that finds only benches blocked by a running one's service ends; the others carry on with the rest.
    await Promise.all(Array.from({ length: Math.min(jobs, selected.length) }, lane));
    while (waiting.length > 0) await lane();
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  // Table order, whatever order they finished in.
  const ordered = selected.flatMap((b) => results.get(b) ?? []);
  const minutes = (performance.now() - started) / 60_000;

  console.log(`\n# hotline benchmarks${quick ? ' (quick)' : ''}, ${minutes.toFixed(1)} min\n`);
  console.log(markdownTable(ordered.flatMap((r) => r.rows)));
  const bad = ordered.flatMap((r) => violations(r));
  for (const z of bad) console.log(`ZERO-LOSS VIOLATION: ${z.name} = ${z.count}`);
  for (const f of failed) console.log(`FAILED: ${f}`);

  if (values['write-docs']) {
    const out = path.join(ROOT, 'docs', 'benchmarks.md');
    writeFileSync(out, renderDocs(ordered, failed, machine(), quick, minutes));
    console.log(`\nwrote ${path.relative(process.cwd(), out)}`);
  }
  if (bad.length > 0 || failed.length > 0) process.exitCode = 1;
}

await main();
