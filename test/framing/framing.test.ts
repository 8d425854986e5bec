/**
 * The TCP framings as pure decoders: input split at random byte offsets (seeded, so a failure replays), CRLF, UTF-8
 * characters split across chunks, and frames over the limit.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MessageData } from '../../src/plugin/contract.js';
import type { Decoder } from '../../src/framing/framing.js';
import { lengthPrefixed } from '../../src/framing/length-prefixed.js';
import { lines } from '../../src/framing/lines.js';

/** mulberry32: small, seeded, good enough to pick split points. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Cut `bytes` into chunks at random offsets, including empty and one-byte chunks. */
function split(bytes: Buffer, random: () => number): Buffer[] {
  const chunks: Buffer[] = [];
  let at = 0;
  while (at < bytes.length) {
    const r = random();
    const size = r < 0.1 ? 0 : r < 0.4 ? 1 : Math.ceil(random() * 40);
    chunks.push(bytes.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

function feed(decoder: Decoder, chunks: Buffer[]): { messages: MessageData[]; ok: boolean } {
  const messages: MessageData[] = [];
  for (const c of chunks) {
    // Each chunk in its own buffer, as a socket's reads are: a decoder may keep a view of it (Decoder.write).
    const own = Buffer.alloc(c.length);
    c.copy(own);
    if (!decoder.write(own, (m) => messages.push(m))) return { messages, ok: false };
  }
  return { messages, ok: true };
}

const ALPHABET = ['a', 'b', 'Z', ' ', '9', 'é', 'ß', '日', '本', '😀', '\t', '\r'];

function randomText(random: () => number, maxLen: number): string {
  let s = '';
  const n = Math.floor(random() * maxLen);
  for (let i = 0; i < n; i++) s += ALPHABET[Math.floor(random() * ALPHABET.length)];
  // A CR right before the newline is the line ending's, so a message cannot end in one.
  return s.replace(/\r+$/, '');
}

test('lines: messages survive any split of the stream, with LF or CRLF endings and multi-byte UTF-8', () => {
  const random = seeded(42);
  for (let round = 0; round < 300; round++) {
    const messages = Array.from({ length: 1 + Math.floor(random() * 12) }, () => randomText(random, 30));
    const wire = Buffer.from(messages.map((m) => m + (random() < 0.5 ? '\r\n' : '\n')).join(''), 'utf8');
    const out = feed(lines.createDecoder(1024), split(wire, random));
    assert.ok(out.ok);
    assert.deepEqual(out.messages, messages, `round ${round}`);
  }
});

test('lines: CRLF split between chunks, a lone CR kept, empty lines, and UTF-8 split inside a character', () => {
  const d = lines.createDecoder(100);
  const got: MessageData[] = [];
  const push = (m: MessageData) => got.push(m);
  d.write(Buffer.from('crlf\r'), push);
  assert.deepEqual(got, []);
  d.write(Buffer.from('\nmid\rdle\n\n'), push);
  const kanji = Buffer.from('日本\n', 'utf8');
  d.write(kanji.subarray(0, 1), push);
  d.write(kanji.subarray(1, 4), push);
  assert.equal(d.pendingBytes, 4);
  d.write(kanji.subarray(4), push);
  assert.equal(d.pendingBytes, 0);
  assert.deepEqual(got, ['crlf', 'mid\rdle', '', '日本']);
});

test('lines: a line of exactly maxPayload bytes passes (with LF or CRLF); one byte more is refused', () => {
  const max = 16;
  const exact = 'x'.repeat(max);
  for (const ending of ['\n', '\r\n']) {
    const d = lines.createDecoder(max);
    const got: MessageData[] = [];
    // Byte by byte, so the pending check sees the CR before the LF arrives.
    for (const b of Buffer.from(exact + ending)) assert.equal(d.write(Buffer.of(b), (m) => got.push(m)), true);
    assert.deepEqual(got, [exact], JSON.stringify(ending));
  }
  const d = lines.createDecoder(max);
  const got: MessageData[] = [];
  assert.equal(d.write(Buffer.from(`ok\n${exact}y\nnever\n`), (m) => got.push(m)), false);
  assert.deepEqual(got, ['ok'], 'messages before the oversized one are delivered, none after');
});

test('lines: an unterminated line is refused as soon as it passes the limit, without waiting for its newline', () => {
  const d = lines.createDecoder(16);
  assert.equal(d.write(Buffer.from('a'.repeat(10)), () => undefined), true);
  assert.equal(d.write(Buffer.from('a'.repeat(10)), () => undefined), false);
});

test('lines: encode appends a newline to strings and bytes', () => {
  assert.equal(lines.encode('hi'), 'hi\n');
  assert.deepEqual(lines.encode(new Uint8Array([1, 2])), Buffer.from([1, 2, 0x0a]));
});

function frame(body: Uint8Array): Buffer {
  return lengthPrefixed.encode(body) as Buffer;
}

test('length-prefixed: frames survive any split of the stream, headers included, empty frames too', () => {
  const random = seeded(7);
  for (let round = 0; round < 300; round++) {
    const bodies = Array.from({ length: 1 + Math.floor(random() * 10) }, () =>
      Uint8Array.from({ length: Math.floor(random() * 60) }, () => Math.floor(random() * 256)),
    );
    const wire = Buffer.concat(bodies.map(frame));
    const out = feed(lengthPrefixed.createDecoder(1024), split(wire, random));
    assert.ok(out.ok);
    assert.equal(out.messages.length, bodies.length, `round ${round}`);
    out.messages.forEach((m, i) => {
      assert.ok(m instanceof Uint8Array);
      assert.deepEqual(Buffer.from(m), Buffer.from(bodies[i]!), `round ${round}, frame ${i}`);
    });
  }
});

test('length-prefixed: a UTF-8 string round-trips; pendingBytes counts a partial frame', () => {
  const wire = frame(new TextEncoder().encode('héllo 😀'));
  const d = lengthPrefixed.createDecoder(100);
  const got: MessageData[] = [];
  d.write(wire.subarray(0, 6), (m) => got.push(m));
  assert.equal(d.pendingBytes, 6);
  d.write(wire.subarray(6), (m) => got.push(m));
  assert.equal(d.pendingBytes, 0);
  assert.equal(Buffer.from(got[0]!).toString('utf8'), 'héllo 😀');
  assert.deepEqual(lengthPrefixed.encode('héllo 😀'), wire);
});

test('length-prefixed: a partial frame keeps a view of a large read buffer it is most of, and copies a small part of one', () => {
  const body = Buffer.alloc(30_000, 7);
  const wire = frame(body);
  // 20,000 bytes, most of their buffer: kept as a view, not copied (the read buffer is the decoder's from then on).
  const big = Buffer.alloc(20_004);
  wire.copy(big, 0, 0, 20_004);
  const d = lengthPrefixed.createDecoder(100_000);
  const got: MessageData[] = [];
  d.write(big, (m) => got.push(m));
  big.fill(9, 4);
  // A small part of a large buffer: copied, so it does not pin the rest of the buffer.
  const large = Buffer.alloc(65_536, 1);
  wire.copy(large, 0, 20_004, 20_504);
  d.write(large.subarray(0, 500), (m) => got.push(m));
  large.fill(8);
  d.write(Buffer.from(wire.subarray(20_504)), (m) => got.push(m));
  assert.equal(got.length, 1);
  const out = Buffer.from(got[0]!);
  assert.equal(out.subarray(0, 20_000).every((b) => b === 9), true, 'the view');
  assert.equal(out.subarray(20_000).every((b) => b === 7), true, 'the copy');
});

test('length-prefixed: a frame trickled a byte per read is held in a few buffers, not one per byte', () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  const d = lengthPrefixed.createDecoder(16 * 1024 * 1024);
  const header = Buffer.alloc(4);
  header.writeUInt32BE(8 * 1024 * 1024);
  d.write(header, () => assert.fail('no message yet'));
  gc?.();
  const before = process.memoryUsage();
  // Each read its own one-byte buffer, as a socket's are.
  for (let i = 0; i < 200_000; i++) d.write(Buffer.alloc(1, i & 0xff), () => assert.fail('no message yet'));
  gc?.();
  const after = process.memoryUsage();
  assert.equal(d.pendingBytes, 4 + 200_000);
  // Held as copies in 16 KiB buffers: ~0.2 MB. A Buffer per byte was ~40 MB of heap here (~190 bytes each).
  const grown = after.heapUsed - before.heapUsed + (after.arrayBuffers - before.arrayBuffers);
  assert.ok(grown < 8 * 1024 * 1024, `heap and buffers grew ${(grown / 1048576).toFixed(1)} MiB for 0.2 MB held`);
  const rest = Buffer.alloc(8 * 1024 * 1024 - 200_000, 5);
  const got: MessageData[] = [];
  d.write(rest, (m) => got.push(m));
  assert.equal(got.length, 1);
  const out = Buffer.from(got[0]!);
  assert.equal(out.length, 8 * 1024 * 1024);
  for (const i of [0, 1, 255, 256, 199_999]) assert.equal(out[i], i & 0xff, `byte ${i}`);
  assert.equal(out[200_000], 5);
});

test('length-prefixed: a frame of exactly maxPayload passes; a larger header is refused before its body arrives', () => {
  const d = lengthPrefixed.createDecoder(8);
  const got: MessageData[] = [];
  assert.equal(d.write(frame(new Uint8Array(8).fill(3)), (m) => got.push(m)), true);
  assert.equal(got.length, 1);
  const header = Buffer.alloc(4);
  header.writeUInt32BE(0xffffffff);
  assert.equal(d.write(Buffer.concat([frame(Uint8Array.of(1)), header]), (m) => got.push(m)), false);
  assert.equal(got.length, 2, 'the frame before the oversized header is delivered');
});
