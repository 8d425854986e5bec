/**
 * Fuzz of the handoff's transfer decoding (src/handoff/transfer-codec.ts) and the handle lane's framing
 * (src/handoff/lane-frames.ts): any body decodes to a well-shaped transfer or throws HOTLINE_E_HANDOFF_FRAME, and
 * nothing else; every connection the codec encodes decodes to itself; the lane's frames come out the same under any
 * split of the byte stream.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import v8 from 'node:v8';
import fc from 'fast-check';
import { HotlineError } from '../../src/errors.js';
import { LANE_HEADER, splitLaneFrames } from '../../src/handoff/lane-frames.js';
import type { ConnTransfer } from '../../src/handoff/protocol.js';
import { type LaneMessage, TransferCodec } from '../../src/handoff/transfer-codec.js';
import { cuts, fuzzParams, splitAt, totalOrCoded } from './fuzz.js';

const message = fc.oneof(fc.string({ maxLength: 10 }), fc.uint8Array({ maxLength: 10 }));
const conn: fc.Arbitrary<ConnTransfer> = fc.record({
  t: fc.constant('conn' as const),
  kind: fc.constantFrom('ws' as const, 'tcp' as const),
  framing: fc.constantFrom(undefined, 'lines' as const, 'length' as const),
  remoteAddress: fc.string({ unit: 'binary', maxLength: 20 }),
  protocol: fc.string({ maxLength: 10 }),
  head: fc.uint8Array({ maxLength: 20 }),
  opened: fc.boolean(),
  state: fc.oneof(fc.constant(undefined), fc.jsonValue({ maxDepth: 2 })),
  messages: fc.array(message, { maxLength: 3 }),
});

function encode(msg: LaneMessage, compact: boolean): Buffer {
  const codec = new TransferCodec();
  codec.compact = compact;
  return codec.encode(msg, 0);
}

/** Bodies: valid encodings, then cut short, extended, or with bytes flipped; and raw bytes (compact tag or not). */
const body = fc.oneof(
  fc.tuple(conn, fc.boolean(), fc.nat(), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }), fc.uint8Array({ maxLength: 4 })).map(([c, compact, cut, flips, extra]) => {
    const b = Buffer.from(encode(c, compact));
    for (const [at, v] of flips) if (b.length > 0) b[at % b.length] = v;
    const kept = b.subarray(0, b.length - (cut % (b.length + 1)) * (cut % 3 === 0 ? 1 : 0));
    return Buffer.concat([kept, cut % 5 === 0 ? Buffer.from(extra) : Buffer.alloc(0)]);
  }),
  fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.concat([Buffer.from([1]), Buffer.from(b)])),
  fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)),
  fc.jsonValue({ maxDepth: 2 }).map((v) => v8.serialize(v)),
  fc.record({ t: fc.constantFrom('conn', 'state', 'codec', 'x'), compact: fc.constantFrom(1, 2), plugin: fc.constantFrom('p', 3) }, { requiredKeys: ['t'] }).map((v) => v8.serialize(v)),
);

test('TransferCodec.decode: any body gives a well-shaped transfer or HOTLINE_E_HANDOFF_FRAME, never another throw', { timeout: 60_000 }, () => {
  const codec = new TransferCodec();
  fc.assert(
    fc.property(body, (b) => {
      const r = totalOrCoded('HOTLINE_E_HANDOFF_FRAME', () => codec.decode(b));
      if (r instanceof HotlineError) return;
      assert.ok(r.t === 'conn' || r.t === 'state' || r.t === 'codec');
      if (r.t === 'conn') {
        assert.ok(r.kind === 'ws' || r.kind === 'tcp');
        assert.ok(r.head instanceof Uint8Array && Array.isArray(r.messages) && typeof r.remoteAddress === 'string');
      }
    }),
    fuzzParams('transfer bodies'),
  );
});

test('TransferCodec: every connection round-trips, compact or v8', { timeout: 60_000 }, () => {
  const codec = new TransferCodec();
  fc.assert(
    fc.property(conn, fc.boolean(), (c, compact) => {
      const d = codec.decode(encode(c, compact)) as ConnTransfer;
      assert.deepEqual({ ...d, head: Buffer.from(d.head) }, { ...c, head: Buffer.from(c.head) });
    }),
    fuzzParams('transfer round trip'),
  );
});

test('TransferCodec: regressions (truncated compact bodies threw RangeError from readUInt32LE)', () => {
  const codec = new TransferCodec();
  codec.compact = true;
  const full = encode({ t: 'conn', kind: 'tcp', framing: 'lines', remoteAddress: '10.0.0.1', protocol: '', head: Buffer.from('ab'), opened: true, state: undefined, messages: [] }, true);
  for (let n = 0; n < full.length; n++) assert.throws(() => codec.decode(full.subarray(0, n)), (e) => e instanceof HotlineError && e.code === 'HOTLINE_E_HANDOFF_FRAME', `cut at ${n}`);
  assert.throws(() => codec.decode(Buffer.concat([full, Buffer.from([0])])), (e) => e instanceof HotlineError && e.code === 'HOTLINE_E_HANDOFF_FRAME');
});

function laneFrame(len: number, flag: number, fill: number): Buffer {
  const b = Buffer.alloc(LANE_HEADER + len, fill);
  b.writeUInt32LE(len, 0);
  b[4] = flag;
  return b;
}

function readLane(parts: Buffer[]): { frames: string[]; error: string | undefined; pending: string } {
  const frames: string[] = [];
  let pending: Buffer = Buffer.alloc(0);
  for (const p of parts) {
    const r = totalOrCoded('HOTLINE_E_HANDOFF_FRAME', () => splitLaneFrames(pending, Buffer.from(p), (b, h) => frames.push(`${h ? 1 : 0}:${b.toString('hex')}`)));
    if (r instanceof HotlineError) return { frames, error: r.code, pending: '' };
    pending = r;
  }
  return { frames, error: undefined, pending: pending.toString('hex') };
}

const laneStream = fc.oneof(
  fc
    .tuple(fc.array(fc.tuple(fc.nat({ max: 30 }), fc.constantFrom(0, 1, 0, 1, 2), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }), fc.uint8Array({ maxLength: 8 }))
    .map(([fs, tail]) => Buffer.concat([...fs.map(([n, f, fill]) => laneFrame(n, f, fill)), Buffer.from(tail)])),
  fc.uint8Array({ maxLength: 100 }).map((b) => Buffer.from(b)),
);

test('lane frames: any split of the stream gives the same frames, the same error and the same tail', { timeout: 60_000 }, () => {
  fc.assert(
    fc.property(laneStream, cuts, (stream, c) => {
      assert.deepEqual(readLane(splitAt(stream, c)), readLane([stream]));
    }),
    fuzzParams('lane frames'),
  );
});
