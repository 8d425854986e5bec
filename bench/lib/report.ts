/**
 * What a bench file reports: rows for the table (figure, hotline, baseline, ratio, target), the zero-loss counts the
 * runner enforces, and notes. Each bench prints its own table when run alone; given `--report FILE` it also writes
 * the result as JSON for bench/run.ts.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

export interface BenchRow {
  /** e.g. 'P1 swap latency, median'. */
  figure: string;
  hotline: string;
  baseline: string;
  /** hotline vs baseline, e.g. '25× faster' or '0.97×'. */
  ratio: string;
  target: string;
  /** Whether the target was met; undefined when the row has no target of its own. Never fails the run. */
  met?: boolean;
}

/** A count that must be zero (P3, P5 hotline rows). A non-zero one makes the runner exit 1. */
export interface ZeroLossCount {
  name: string;
  count: number;
}

export interface BenchResult {
  id: string;
  title: string;
  quick: boolean;
  rows: BenchRow[];
  zeroLoss: ZeroLossCount[];
  notes: string[];
}

export interface BenchArgs {
  quick: boolean;
  report: string | undefined;
}

/** The flags every bench file takes: `--quick`, `--report FILE`. */
export function benchArgs(): BenchArgs {
  const { values } = parseArgs({
    options: { quick: { type: 'boolean', default: false }, report: { type: 'string' } },
    strict: false,
  });
  return { quick: values.quick === true, report: typeof values.report === 'string' ? values.report : undefined };
}

/** Markdown table of rows. */
export function markdownTable(rows: readonly BenchRow[]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const met = (r: BenchRow) => (r.met === undefined ? '' : r.met ? ' ✓' : ' ✗');
  return [
    '| figure | hotline | baseline | ratio | target |',
    '|---|---|---|---|---|',
    ...rows.map((r) => `| ${esc(r.figure)} | ${esc(r.hotline)} | ${esc(r.baseline)} | ${esc(r.ratio)} | ${esc(r.target)}${met(r)} |`),
  ].join('\n');
}

/** The zero-loss counts that are not zero. */
export function violations(result: Pick<BenchResult, 'zeroLoss'>): ZeroLossCount[] {
  return result.zeroLoss.filter((z) => z.count !== 0);
}

/** Print the result, write it for the runner if asked, and set the exit code on a zero-loss violation. */
export function finish(args: BenchArgs, result: BenchResult): void {
  console.log(`\n## ${result.id} ${result.title}${result.quick ? ' (quick)' : ''}\n`);
  console.log(markdownTable(result.rows));
  for (const n of result.notes) console.log(`- ${n}`);
  const bad = violations(result);
  for (const z of bad) console.log(`ZERO-LOSS VIOLATION: ${z.name} = ${z.count}`);
  if (args.report) writeFileSync(args.report, JSON.stringify(result, null, 2));
  if (bad.length > 0) process.exitCode = 1;
}
