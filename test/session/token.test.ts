import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { issueToken, newSessionId, verifyToken } from '../../src/session/token.js';

test('a resume token verifies only unedited, under its own secret', () => {
  const secret = randomBytes(32);
  const id = newSessionId();
  const token = issueToken(secret, id);
  assert.deepEqual(verifyToken(secret, token), { id, gen: 0 });
  assert.equal(verifyToken(randomBytes(32), token), undefined);
  // Every single-character edit is refused, including those base64 decoding would ignore.
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  let tried = 0;
  for (let i = 0; i < token.length; i++) {
    if (token[i] === '.') continue;
    for (const ch of ['A', 'B', 'C', 'D', alphabet[(alphabet.indexOf(token[i]!) + 1) % 64]!]) {
      if (ch === token[i]) continue;
      const edited = token.slice(0, i) + ch + token.slice(i + 1);
      assert.equal(verifyToken(secret, edited), undefined, `edit at ${i} to ${ch} accepted`);
      tried++;
    }
  }
  assert.ok(tried > 200);
  assert.equal(verifyToken(secret, 'no-dot'), undefined);
  assert.equal(verifyToken(secret, `${id}.${id}.x`), undefined);
});

test('the generation is signed: each resume issues a token only its own generation verifies as', () => {
  const secret = randomBytes(32);
  const id = newSessionId();
  const t1 = issueToken(secret, id, 1);
  const t2 = issueToken(secret, id, 2);
  assert.notEqual(t1, t2);
  assert.deepEqual(verifyToken(secret, t2), { id, gen: 2 });
  // Moving the generation forward by hand breaks the signature.
  assert.equal(verifyToken(secret, t1.replace('.1.', '.2.')), undefined);
  // One spelling per generation: no leading zeros, signs or exponents.
  for (const g of ['01', '-1', '1e3', '+1', '']) assert.equal(verifyToken(secret, `${id}.${g}.${t1.split('.')[2]}`), undefined, g);
  // A token from before generations (`<id>.<HMAC(id)>`) is generation 0, so sessions resume across that upgrade.
  const legacy = `${id}.${createHmac('sha256', secret).update(id).digest('base64url')}`;
  assert.deepEqual(verifyToken(secret, legacy), { id, gen: 0 });
});
