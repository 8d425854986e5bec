/**
 * issue 12: `hotline reload --pin [--max-age]` and `--canary N% [--window]` become the policy sent on the admin socket;
 * every bad combination or value is refused with HOTLINE_E_POLICY before anything is sent.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDuration, policyFromFlags } from '../../src/cli/admin-commands.js';
import { isHotlineError } from '../../src/errors.js';
import { parseAdminRequest } from '../../src/admin/protocol.js';

test('reload flags become a policy; bad ones are refused by code', () => {
  assert.equal(policyFromFlags('reload', {}), undefined);
  assert.equal(policyFromFlags('reload', { pin: true }), 'pin');
  assert.deepEqual(policyFromFlags('reload', { pin: true, 'max-age': '10m' }), { pin: true, maxAge: 600_000 });
  assert.deepEqual(policyFromFlags('reload', { canary: '10%', window: '30s' }), { canary: 0.1, window: 30_000 });
  assert.equal(parseDuration('x', '500ms'), 500);
  for (const f of [{ canary: '0%' }, { canary: '150%' }, { canary: '10' }, { pin: true, canary: '10%' }, { 'max-age': '1m' }, { pin: true, 'max-age': 'soon' }, { pin: true, window: '1s' }]) {
    assert.throws(() => policyFromFlags('reload', f), (e: unknown) => isHotlineError(e, 'HOTLINE_E_POLICY'), JSON.stringify(f));
  }
  assert.throws(() => policyFromFlags('status', { pin: true }), (e: unknown) => isHotlineError(e, 'HOTLINE_E_POLICY'));
});

test('the admin socket validates a policy field and accepts promote', () => {
  assert.deepEqual(parseAdminRequest('{"id":1,"cmd":"reload","policy":{"pin":true,"maxAge":1000}}'), { id: 1, cmd: 'reload', policy: { pin: true, maxAge: 1000 } });
  assert.deepEqual(parseAdminRequest('{"id":2,"cmd":"promote"}'), { id: 2, cmd: 'promote' });
  const bad = parseAdminRequest('{"id":3,"cmd":"reload","policy":{"canary":7}}');
  assert.ok('error' in bad && bad.error.code === 'HOTLINE_E_POLICY');
  const wrongCmd = parseAdminRequest('{"id":4,"cmd":"status","policy":"pin"}');
  assert.ok('error' in wrongCmd && wrongCmd.error.code === 'HOTLINE_E_ADMIN_REQUEST');
});
