/**
 * Human-readable, coloured log lines for `hotline dev`: a pino destination that formats each JSON line. Swaps show
 * their phases and durations; errors show their code first.
 */
import { Writable } from 'node:stream';
import { styleText } from 'node:util';
import type { SwapRecord } from '../swap/history.js';

type Format = Parameters<typeof styleText>[0];

const LEVELS: Record<number, [string, Format]> = {
  10: ['trace', 'gray'],
  20: ['debug', 'gray'],
  30: ['info', 'green'],
  40: ['warn', 'yellow'],
  50: ['error', 'red'],
  60: ['fatal', 'magenta'],
};

function paint(format: Format, text: string, colour: boolean): string {
  return colour ? styleText(format, text) : text;
}

/** Format one pino JSON line. Exported for tests. */
export function formatLine(line: string, colour = false): string {
  let rec: { level?: number; time?: number; msg?: string; code?: string; swap?: SwapRecord; err?: { type?: string; stack?: string } };
  try {
    rec = JSON.parse(line);
  } catch {
    return line;
  }
  const [name, format] = LEVELS[rec.level ?? 30] ?? ['info', 'green'];
  const time = new Date(rec.time ?? Date.now()).toISOString().slice(11, 23);
  let out = `${paint('gray', time, colour)} ${paint(format, name.padEnd(5), colour)} `;
  if (rec.code && !(rec.msg ?? '').includes(rec.code)) out += paint(['bold', 'red'], rec.code, colour) + ' ';
  out += rec.msg ?? '';
  const swap = rec.swap;
  if (swap) {
    const phases = Object.entries(swap.durations)
      .map(([phase, ms]) => `${phase} ${ms}ms`)
      .join(' → ');
    out += '\n      ' + paint('cyan', phases, colour);
  }
  // A coded error's message is the whole story (a build error carries file:line:column and a code frame); its stack
  // is hotline's own. Stacks are for what no code explains, and for a plugin's errors, mapped to its sources.
  if (rec.level !== undefined && rec.level >= 50 && rec.err?.stack && rec.err.type !== 'HotlineError') {
    out += '\n' + paint('gray', rec.err.stack.split('\n').slice(0, 6).join('\n'), colour);
  }
  return out + '\n';
}

/** A writable stream for pino that prints formatted lines to `out`. */
export function prettyDestination(out: NodeJS.WriteStream = process.stderr): Writable {
  const colour = out.isTTY === true && !process.env.NO_COLOR;
  let pending = '';
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      pending += chunk.toString();
      let nl: number;
      while ((nl = pending.indexOf('\n')) !== -1) {
        out.write(formatLine(pending.slice(0, nl), colour));
        pending = pending.slice(nl + 1);
      }
      done();
    },
  });
}
