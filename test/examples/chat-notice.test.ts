/**
 * The chat page's notice when new code goes live (issue 10, fault 9): it said "v1.0.0, generation 2 (was v1.0.0)".
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { updateNotice } from '../../examples/chat/format.js';

test('an edit without a version bump says new code; a bump names both versions; both say what was kept', () => {
  assert.equal(updateNotice('1.0.0', '1.0.0', 2), 'server updated live: new code for v1.0.0 (build 2); no one was disconnected, history and nicknames kept');
  assert.equal(updateNotice('1.0.0', '1.1.0', 3), 'server updated live: v1.0.0 → v1.1.0 (build 3); no one was disconnected, history and nicknames kept');
  assert.doesNotMatch(updateNotice('1.0.0', '1.0.0', 2), /\(was v1\.0\.0\)/);
});
