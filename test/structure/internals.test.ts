/**
 * Node and ws private internals are reached from one module only, src/internals/ (STYLE.md 13): there the version
 * each relies on is written down, and checkInternals() checks them at startup. A new use elsewhere fails here.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const SRC = path.resolve(import.meta.dirname, '../../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** The folder of a file under src/ ('.' for src/index.ts and src/errors.ts). */
function folderOf(file: string): string {
  const rel = path.relative(SRC, file).split(path.sep);
  return rel.length > 1 ? rel[0]! : '.';
}

// Private fields of Node and ws that hotline depends on. Pinned versions, one module, one self-check.
const INTERNALS = /\b(_handle|_socket|_receiver|_sender|_readableState|_writableState|_createServerHandle|_setSimultaneousAccepts|process\.binding|internalBinding|_state|_fragments|_bufferedBytes|_payloadLength|_opcode|_fin|_compressed|_totalPayloadLength|_messageLength|_buffers|_loop|_fragmented|_masked|_mask|_errored|_closeFrameReceived|_closeFrameSent|_extensions|_protocol|_readyState|_isServer)\b/;

test('Node and ws internals are reached only from src/internals/', () => {
  const offenders: string[] = [];
  for (const file of sourceFiles(SRC)) {
    if (folderOf(file) === 'internals') continue;
    const lines = readFileSync(file, 'utf8').split('\n');
    lines.forEach((line, i) => {
      const code = line.replace(/\/\/.*$/, '').replace(/^\s*\*.*$/, '');
      if (INTERNALS.test(code)) offenders.push(`${path.relative(SRC, file)}:${i + 1}: ${line.trim()}`);
    });
  }
  assert.deepEqual(offenders, [], `internals outside src/internals/:\n${offenders.join('\n')}`);
});
