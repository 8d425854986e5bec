/**
 * The architecture rules a reader relies on (the folder layout of DESIGN.md §10, STYLE.md 13):
 * - no import cycle between folders of src/, so one part can change without reading the rest;
 * - Node and ws private internals are reached from one module only, src/internals/: there the version each relies on
 *   is written down, and checkInternals() checks them at startup. A new use elsewhere fails here.
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

function folderGraph(): Map<string, Map<string, string[]>> {
  const graph = new Map<string, Map<string, string[]>>();
  for (const file of sourceFiles(SRC)) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s+['"](\.{1,2}\/[^'"]+)['"]/g)) {
      const target = path.resolve(path.dirname(file), m[1]!);
      const a = folderOf(file);
      const b = folderOf(target);
      if (a === b || b === '.') continue; // the root modules (errors.ts) are leaves every folder may use
      if (!graph.has(a)) graph.set(a, new Map());
      const to = graph.get(a)!;
      if (!to.has(b)) to.set(b, []);
      to.get(b)!.push(path.relative(SRC, file));
    }
  }
  return graph;
}

test('no import cycle between the folders of src/', () => {
  const graph = folderGraph();
  const cycles: string[] = [];
  // A cycle through a and b exists when each reaches the other.
  const reach = (from: string): Set<string> => {
    const seen = new Set<string>();
    const stack = [from];
    while (stack.length > 0) {
      for (const next of graph.get(stack.pop()!)?.keys() ?? []) {
        if (!seen.has(next)) {
          seen.add(next);
          stack.push(next);
        }
      }
    }
    return seen;
  };
  for (const [a, to] of graph) {
    for (const [b, files] of to) {
      if (reach(b).has(a)) cycles.push(`${a} -> ${b} (${files.join(', ')}) and back`);
    }
  }
  assert.deepEqual(cycles, [], `folder import cycles:\n${cycles.join('\n')}`);
});

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
