/**
 * The error catalogue and its documentation agree: every code in src/errors.ts has a row in docs/errors.md, the
 * page names no code that does not exist, and every code the sources use is in the catalogue.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES, HotlineError, isHotlineError } from '../src/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const doc = readFileSync(path.join(root, 'docs/errors.md'), 'utf8');
const catalogue = Object.keys(ERROR_CODES).sort();

/** Codes that have their own table row: `| \`HOTLINE_E_X\` | when | what to do |`. */
function documentedRows(): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  for (const line of doc.split('\n')) {
    const m = /^\|\s*`(HOTLINE_E_[A-Z0-9_]+)`\s*\|(.*)\|\s*$/.exec(line);
    if (!m) continue;
    assert.ok(!rows.has(m[1]!), `${m[1]} has two rows in docs/errors.md`);
    rows.set(m[1]!, m[2]!.split('|').map((c) => c.trim()));
  }
  return rows;
}

test('every code in ERROR_CODES has a row in docs/errors.md, saying when it happens and what to do', () => {
  const rows = documentedRows();
  const missing = catalogue.filter((c) => !rows.has(c));
  assert.deepEqual(missing, [], `undocumented codes: add a row to docs/errors.md for ${missing.join(', ')}`);
  for (const [code, cells] of rows) {
    assert.equal(cells.length, 2, `${code}: a row has three columns (code, when, what to do)`);
    assert.ok(cells.every((c) => c.length >= 10), `${code}: both "when" and "what to do" are filled in`);
  }
});

test('docs/errors.md names no HOTLINE_E_ code that is not in ERROR_CODES', () => {
  const mentioned = new Set(doc.match(/HOTLINE_E_[A-Z0-9_]+/g) ?? []);
  const unknown = [...mentioned].filter((c) => !(c in ERROR_CODES));
  assert.deepEqual(unknown, [], `docs/errors.md mentions codes that do not exist: ${unknown.join(', ')}`);
});

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) return sourceFiles(p);
    return /\.(ts|js)$/.test(name) ? [p] : [];
  });
}

test('every HOTLINE_E_ code used in src/ is in the catalogue', () => {
  const unknown = new Set<string>();
  for (const file of sourceFiles(path.join(root, 'src'))) {
    for (const code of readFileSync(file, 'utf8').match(/HOTLINE_E_[A-Z0-9_]*[A-Z0-9]/g) ?? []) {
      if (!(code in ERROR_CODES)) unknown.add(`${code} (${path.relative(root, file)})`);
    }
  }
  assert.deepEqual([...unknown], []);
});

test('HotlineError carries its code, the catalogue message by default, a cause, and JSON without the stack', () => {
  const cause = new Error('disk on fire');
  const err = new HotlineError('HOTLINE_E_BUILD', undefined, { cause });
  assert.equal(err.code, 'HOTLINE_E_BUILD');
  assert.equal(err.message, ERROR_CODES.HOTLINE_E_BUILD);
  assert.equal(err.cause, cause);
  assert.equal(err.name, 'HotlineError');
  assert.deepEqual(JSON.parse(JSON.stringify(err)), { code: 'HOTLINE_E_BUILD', message: ERROR_CODES.HOTLINE_E_BUILD });
  assert.ok(isHotlineError(err, 'HOTLINE_E_BUILD'));
  assert.ok(!isHotlineError(err, 'HOTLINE_E_CHECK'));
  assert.ok(!isHotlineError(Object.assign(new Error('x'), { code: 'HOTLINE_E_BUILD' })));
  for (const code of catalogue) assert.match(code, /^HOTLINE_E_[A-Z0-9_]+$/);
});
