/**
 * Fuzz of the session protocol decoder (src/session/protocol.ts), the parser that reads every `hotline.v1` text frame
 * on the server and on the client: for any text it returns a frame whose fields hold what their types say, or a
 * HOTLINE_E_SESSION_PROTOCOL error, and never throws. Every message encodeMessage makes decodes to itself.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { HotlineError } from '../../src/errors.js';
import { decodeFrame, encodeMessage, MAX_TOKEN_LENGTH, type ReceivedFrame } from '../../src/session/protocol.js';
import { fuzzParams, totalOrCoded } from './fuzz.js';

const seq = (n: unknown) => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

/** The invariants a caller relies on, checked on every frame the decoder accepts. */
function checkFrame(f: ReceivedFrame): void {
  assert.equal(Object.getPrototypeOf(f), Object.prototype, 'a plain object built by the decoder');
  switch (f.t) {
    case 'm':
      assert.ok(seq(f.s) && f.s >= 1);
      assert.ok(typeof f.data === 'string' || f.data instanceof Uint8Array);
      return;
    case 'a':
      return assert.ok(seq(f.a));
    case 'hello':
      assert.equal(f.v, 1);
      assert.ok(seq(f.rx));
      return assert.ok(f.token === null || (typeof f.token === 'string' && f.token.length > 0 && f.token.length <= MAX_TOKEN_LENGTH));
    case 'welcome':
      assert.ok(typeof f.token === 'string' && seq(f.rx) && seq(f.replay) && typeof f.resumed === 'boolean');
      return assert.ok(f.lost === null || (typeof f.lost.code === 'string' && typeof f.lost.message === 'string'));
    case 'reconnect':
      return assert.ok(seq(f.delay) && f.delay <= 0x7fffffff);
    case 'end':
      return;
    default:
      assert.fail(`an unknown frame type got through: ${JSON.stringify(f)}`);
  }
}

/** Values a hostile peer would try in a field. */
const weird = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1, 1.5, -0, 1e300, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 2, '', '!', '=', 'QQ', 'QQ==', 'QQ=', 'Q===', '====', 'AAAA', 'hotline.v1', '__proto__'),
  fc.string({ maxLength: 12 }),
  fc.base64String({ maxLength: 16 }),
  fc.integer(),
  fc.double(),
  fc.jsonValue({ maxDepth: 2 }),
);
const key = fc.constantFrom('t', 's', 'd', 'b', 'a', 'v', 'token', 'rx', 'resumed', 'replay', 'lost', 'delay', 'code', 'message', '__proto__', 'constructor', 'x');
const type = fc.constantFrom('m', 'a', 'hello', 'welcome', 'reconnect', 'end', 'M', '', 'toString', '__proto__');
/** Objects shaped like frames: a known type, then fields drawn from every field name and hostile values. */
const frameLike = fc
  .tuple(type, fc.array(fc.tuple(key, fc.oneof(weird, fc.dictionary(key, weird, { maxKeys: 3 }))), { maxLength: 6 }))
  .map(([t, fields]) => `{"t":${JSON.stringify(t)}${fields.map(([k, v]) => `,${JSON.stringify(k)}:${JSON.stringify(v) ?? 'null'}`).join('')}}`);
const text = fc.oneof(frameLike, fc.json({ maxDepth: 3 }), fc.string({ maxLength: 60 }), fc.string({ unit: 'binary', maxLength: 40 }));

test('decodeFrame: any text gives a well-typed frame or a HOTLINE_E_SESSION_PROTOCOL error, never a throw', { timeout: 60_000 }, () => {
  fc.assert(
    fc.property(text, (t) => {
      const r = totalOrCoded('HOTLINE_E_SESSION_PROTOCOL', () => decodeFrame(t));
      if (r instanceof HotlineError) return assert.equal(r.code, 'HOTLINE_E_SESSION_PROTOCOL');
      checkFrame(r);
    }),
    fuzzParams('session frames'),
  );
});

test('decodeFrame: every message encodeMessage makes decodes to the same seq and payload', { timeout: 60_000 }, () => {
  const payload = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 20 }), fc.uint8Array({ maxLength: 64 }));
  fc.assert(
    fc.property(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), payload, (s, data) => {
      const f = decodeFrame(encodeMessage(s, data));
      assert.ok(!(f instanceof HotlineError), f instanceof HotlineError ? f.message : '');
      assert.deepEqual(f, { t: 'm', s, data });
    }),
    fuzzParams('session message round trip'),
  );
});

test('decodeFrame: regressions found by hand and by the fuzz', () => {
  for (const t of ['{"t":"m","s":1,"b":"!"}', '{"t":"m","s":1,"b":"QQ"}', '{"t":"m","s":1,"b":" QQ=="}', '{"t":"welcome","token":"x","rx":0,"resumed":false,"replay":0,"lost":"x"}']) {
    const r = decodeFrame(t);
    assert.ok(r instanceof HotlineError && r.code === 'HOTLINE_E_SESSION_PROTOCOL', t);
  }
  // `__proto__` in the JSON is an own key of the parsed object, never the prototype: it supplies no field.
  assert.ok(decodeFrame('{"__proto__":{"t":"end"}}') instanceof HotlineError);
  assert.deepEqual(decodeFrame('{"t":"end","__proto__":{"polluted":1}}'), { t: 'end' });
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});
