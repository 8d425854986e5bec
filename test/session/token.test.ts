import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { issueToken, newSessionId, verifyToken } from '../../src/session/token.js';

test('a resume token verifies only unedited, under its own secret', () => {
  const secret = randomBytes(32);
  const id = newSessionId();
  const token = issueToken(secret, id);
  assert.equal(verifyToken(secret, token), id);
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
