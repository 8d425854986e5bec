/**
 * Fuzz of the TCP framings (src/framing/): for any byte stream and any way it is split into reads, the
 * messages and the oversize verdict are the same as for one read of the whole stream, and the same as a reference
 * model; nothing throws. Streams are built around maxPayload (max − 1 … max + 2 byte messages, CRLF endings), and
 * from raw random bytes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { MessageData } from '../../src/plugin/contract.js';
import type { Framing } from '../../src/framing/framing.js';
import { lengthPrefixed } from '../../src/framing/length-prefixed.js';
import { lines } from '../../src/framing/lines.js';
import { cuts, fuzzParams, splitAt } from './fuzz.js';

interface Outcome {
  messages: string[];
  ok: boolean;
  pending: string;
}

function show(m: MessageData): string {
  return typeof m === 'string' ? `s:${m}` : `b:${Buffer.from(m).toString('hex')}`;
}

/** Feed `parts` to a fresh decoder, stopping at the first refusal, as the transport does (it closes the socket). */
function feed(framing: Framing, max: number, parts: Buffer[]): Outcome {
  const d = framing.createDecoder(max);
  const messages: string[] = [];
  for (const p of parts) {
    if (!d.write(Buffer.from(p), (m) => messages.push(show(m)))) return { messages, ok: false, pending: '' };
  }
  assert.equal(d.pendingBytes, d.unconsumed().length, 'pendingBytes is the length of unconsumed()');
  return { messages, ok: true, pending: d.unconsumed().toString('hex') };
}

/** What the lines framing must do, written the obvious way. */
function linesModel(stream: Buffer, max: number): Outcome {
  const messages: string[] = [];
  let start = 0;
  let nl: number;
  while ((nl = stream.indexOf(0x0a, start)) !== -1) {
    let end = nl;
    if (end > start && stream[end - 1] === 0x0d) end--;
    if (end - start > max) return { messages, ok: false, pending: '' };
    messages.push(show(stream.toString('utf8', start, end)));
    start = nl + 1;
  }
  const rest = stream.subarray(start);
  if (rest.length > max + 1) return { messages, ok: false, pending: '' };
  return { messages, ok: true, pending: rest.toString('hex') };
}

function lengthModel(stream: Buffer, max: number): Outcome {
  const messages: string[] = [];
  let off = 0;
  while (stream.length - off >= 4) {
    const size = stream.readUInt32BE(off);
    if (size > max) return { messages, ok: false, pending: '' };
    if (stream.length - off - 4 < size) break;
    messages.push(show(new Uint8Array(stream.subarray(off + 4, off + 4 + size))));
    off += 4 + size;
  }
  return { messages, ok: true, pending: stream.subarray(off).toString('hex') };
}

const max = fc.integer({ min: 0, max: 40 });
/** A byte that is a line end, a CR, or anything. */
const lineByte = fc.oneof(fc.constant(0x0a), fc.constant(0x0d), fc.integer({ min: 0, max: 255 }), fc.constantFrom(0x41, 0xc3, 0xa9));

/** Line streams whose lines are near maxPayload, with LF or CRLF endings, an optional unterminated tail. */
const lineStream = max.chain((m) =>
  fc.tuple(
    fc.constant(m),
    fc
      .tuple(
        fc.array(fc.tuple(fc.integer({ min: Math.max(0, m - 1), max: m + 2 }), fc.boolean(), fc.integer({ min: 0x20, max: 0x7e })), { maxLength: 6 }),
        fc.uint8Array({ maxLength: 50 }).map((b) => Buffer.from(b.filter((x) => x !== 0x0a))),
      )
      .map(([ls, tail]) => Buffer.concat([...ls.map(([n, crlf, ch]) => Buffer.from(String.fromCharCode(ch).repeat(n) + (crlf ? '\r\n' : '\n'), 'latin1')), tail])),
  ),
);
const rawLineStream = fc.tuple(max, fc.array(lineByte, { maxLength: 300 }).map((b) => Buffer.from(b)));

test('lines: any split of any stream decodes like one read and like the model', { timeout: 60_000 }, () => {
  fc.assert(
    fc.property(fc.oneof(lineStream, rawLineStream), cuts, ([m, stream], c) => {
      const whole = feed(lines, m, [stream]);
      assert.deepEqual(whole, linesModel(stream, m));
      assert.deepEqual(feed(lines, m, splitAt(stream, c)), whole);
    }),
    fuzzParams('lines framing'),
  );
});

function frame(size: number, fill: number): Buffer {
  const b = Buffer.alloc(4 + size, fill);
  b.writeUInt32BE(size, 0);
  return b;
}

/** Length streams: frames of sizes near maxPayload, then a truncated frame or random bytes. */
const lengthStream = max.chain((m) =>
  fc.tuple(
    fc.constant(m),
    fc
      .tuple(
        fc.array(fc.tuple(fc.integer({ min: Math.max(0, m - 1), max: m + 1 }), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
        fc.uint8Array({ maxLength: 12 }),
      )
      .map(([fs, tail]) => Buffer.concat([...fs.map(([n, fill]) => frame(n, fill)), tail])),
  ),
);
const rawLengthStream = fc.tuple(max, fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)));
/** A header that claims up to 4 GiB: refused on the header alone, never buffered. */
const hugeHeader = fc.tuple(
  max,
  fc.integer({ min: 41, max: 0xffffffff }).map((n) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n, 0);
    return b;
  }),
);

test('length-prefixed: any split of any stream decodes like one read and like the model', { timeout: 60_000 }, () => {
  fc.assert(
    fc.property(fc.oneof(lengthStream, rawLengthStream, hugeHeader), cuts, ([m, stream], c) => {
      const whole = feed(lengthPrefixed, m, [stream]);
      assert.deepEqual(whole, lengthModel(stream, m));
      assert.deepEqual(feed(lengthPrefixed, m, splitAt(stream, c)), whole);
    }),
    fuzzParams('length framing'),
  );
});
