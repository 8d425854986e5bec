/**
 * A strict reader of the Prometheus text exposition format (version 0.0.4), for tests: every line must be a comment
 * (`# HELP`, `# TYPE`) or a sample `name{label="v",...} value`; anything else throws, so a malformed exposition fails.
 */

export interface Exposition {
  /** `name{a="1",b="2"}` (labels sorted) → value. */
  samples: Map<string, number>;
  /** Family name → type. */
  types: Map<string, string>;
  /** Sum of every sample of `name` whose labels include `match`. */
  sum(name: string, match?: Record<string, string>): number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?(?:[0-9.e+-]+|Inf|NaN|\+Inf))$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)/gy;

export function parseExposition(text: string): Exposition {
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  const parsed: Array<{ name: string; labels: Record<string, string>; value: number }> = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# HELP ')) continue;
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      if (!name || !type || !['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(type)) throw new Error(`bad TYPE line: ${line}`);
      types.set(name, type);
      continue;
    }
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    if (m[2]) {
      LABEL.lastIndex = 0;
      let l: RegExpExecArray | null;
      let end = 0;
      while ((l = LABEL.exec(m[2])) !== null) {
        labels[l[1]!] = l[2]!;
        end = LABEL.lastIndex;
      }
      if (end !== m[2].length) throw new Error(`bad labels: ${line}`);
    }
    const value = m[3] === '+Inf' || m[3] === 'Inf' ? Infinity : Number(m[3]);
    if (Number.isNaN(value) && m[3] !== 'NaN') throw new Error(`bad value: ${line}`);
    const key = `${m[1]}{${Object.keys(labels).sort().map((k) => `${k}="${labels[k]}"`).join(',')}}`;
    if (samples.has(key)) throw new Error(`duplicate sample ${key}`);
    samples.set(key, value);
    parsed.push({ name: m[1]!, labels, value });
  }
  return {
    samples,
    types,
    sum: (name, match = {}) =>
      parsed.filter((p) => p.name === name && Object.entries(match).every(([k, v]) => p.labels[k] === v)).reduce((a, p) => a + p.value, 0),
  };
}
