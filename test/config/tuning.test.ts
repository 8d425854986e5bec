/**
 * Issue 9 item 8: the table of limits and timeouts as flags and as a config file. Unit tests of the parser; the real
 * CLI (supervised start, dev, exit codes) is in limits-flags.test.ts.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { isHotlineError } from '../../src/errors.js';
import { parseTuning, TUNABLES, tunedHostOptions, validateConfig } from '../../src/config/tuning.js';
import { resolveOptions } from '../../src/host/options.js';
import { pluginDir } from '../helpers/plugin-dir.js';

function configError(fn: () => unknown, key: RegExp): void {
  assert.throws(fn, (err: unknown) => isHotlineError(err, 'HOTLINE_E_CONFIG') && key.test(err.message));
}

test('every README limit and timeout has a flag and a config key, including those of items 4-5 by their exact names', () => {
  const keys = new Set(TUNABLES.map((t) => t.key));
  for (const k of [
    'limits.maxPayload', 'limits.maxConnections', 'limits.maxSendBuffer', 'limits.handshakeTimeout',
    'limits.maxConnectionsPerIp', 'limits.handshakeRatePerIp',
    'limits.maxQueuedMessages', 'limits.maxQueuedBytes', 'limits.frameTimeout', 'limits.maxIncompleteBytes', 'limits.pingInterval', 'limits.pongTimeout',
    'settleTimeout', 'hookTimeout', 'shutdownTimeout', 'probation.window', 'probation.minErrors', 'probation.maxErrorRate',
    'watch.debounce', 'watch.stability', 'sessions.ttl', 'sessions.maxDetached', 'sendAway.batchSize', 'sendAway.interval',
  ]) assert.ok(keys.has(k), k);
  const flags = TUNABLES.flatMap((t) => (t.flag ? [t.flag] : []));
  assert.equal(new Set(flags).size, flags.length, 'flags are unique');
});

test('flags become host options, and the host accepts them', () => {
  const t = parseTuning(
    {
      'max-payload': '65536', 'max-connections': '50', 'handshake-timeout': '2500', 'max-connections-per-ip': '0', 'handshake-rate-per-ip': '20',
      'max-queued-messages': '100', 'ping-interval': '15000', 'settle-timeout': '100', 'probation-max-error-rate': '0.25',
      'watch-debounce': '5', 'session-ttl': '30000', 'max-detached-sessions': '500', 'send-away-batch-size': '10',
    },
    true,
  );
  assert.deepEqual(t, {
    limits: { maxPayload: 65536, maxConnections: 50, handshakeTimeout: 2500, maxConnectionsPerIp: 0, handshakeRatePerIp: 20, maxQueuedMessages: 100, pingInterval: 15000 },
    settleTimeout: 100,
    probation: { maxErrorRate: 0.25 },
    watch: { debounce: 5 },
    sessions: { ttl: 30000, maxDetached: 500 },
    sendAway: { batchSize: 10 },
  });
  const r = resolveOptions({ plugin: 'x.ts', ...tunedHostOptions(t, true, { secret: () => new Uint8Array(32) } as never) });
  assert.equal(r.limits.maxPayload, 65536);
  assert.equal(r.limits.maxConnectionsPerIp, Infinity, '0 is off');
  assert.equal(r.limits.handshakeRatePerIp, 20);
  assert.equal(r.settleTimeout, 100);
  assert.deepEqual(r.watch, { debounce: 5 });
  assert.ok(r.sessions);
  assert.equal(r.sessions.ttl, 30000);
  assert.equal(r.sessions.maxDetached, 500);
  assert.equal(r.probation && r.probation.maxErrorRate, 0.25);
  assert.equal(r.sendAway.batchSize, 10);
  assert.equal(tunedHostOptions(t, false, undefined).watch, false);
  assert.equal(tunedHostOptions({}, true, undefined).watch, true);
  assert.equal(parseTuning({ 'no-probation': true, 'probation-window': '5' }, false).probation, false);
});

test('bad flag values are HOTLINE_E_CONFIG naming the flag', () => {
  for (const [flag, value] of [
    ['max-payload', '1mb'], ['max-payload', '0'], ['max-payload', '1.5'], ['max-connections', '-1'], ['hook-timeout', ''],
    ['settle-timeout', '0x10'], ['probation-max-error-rate', '2'], ['max-payload', '1e6'], ['handshake-rate-per-ip', 'fast'],
  ] as const) {
    configError(() => parseTuning({ [flag]: value }, false), new RegExp(`--${flag} must be`));
  }
  configError(() => parseTuning({ 'session-ttl': '1000' }, false), /sessions\.ttl \(--session-ttl\) needs --sessions/);
});

test('the config file: validated key by key; flags override it', () => {
  const p = pluginDir('');
  try {
    const file = p.write(JSON.stringify({ limits: { maxPayload: 1000, maxConnections: 7 }, shutdownTimeout: 900, probation: false }), 'hotline.json');
    const t = parseTuning({ config: file, 'max-connections': '9' }, false);
    assert.deepEqual(t, { limits: { maxPayload: 1000, maxConnections: 9 }, shutdownTimeout: 900, probation: false });

    configError(() => parseTuning({ config: p.dir + '/missing.json' }, false), /cannot read it/);
    writeFileSync(p.dir + '/broken.json', '{ "limits": ');
    configError(() => parseTuning({ config: p.dir + '/broken.json' }, false), /not valid JSON/);
  } finally {
    p.remove();
  }
  const cases: Array<[unknown, RegExp]> = [
    [{ limits: { maxPayloadd: 5 } }, /limits\.maxPayloadd: is not a known option/],
    [{ limits: { maxPayload: '5' } }, /limits\.maxPayload: must be a positive integer \(bytes\), got "5"/],
    [{ limits: { maxPayload: -5 } }, /limits\.maxPayload: must be/],
    [{ limits: 5 }, /limits: must be an object/],
    [{ hookTimeout: null }, /hookTimeout: must be/],
    [{ port: 8080 }, /port: is not a known option/],
    [JSON.parse('{"__proto__": {"maxPayload": 1}}'), /__proto__: is not a known option/],
    [{ sessions: { store: 'x' } }, /sessions\.store: is not a known option/],
    [{ probation: true }, /probation: must be an object or false/],
    [[1, 2], /top level/],
    [null, /top level/],
  ];
  for (const [doc, re] of cases) configError(() => validateConfig(doc, 'cfg.json'), re);
});

test('issue 11: --isolation and "isolation" in the file choose inline or worker; --worker-heap-mb sets workerLimits; anything else is refused', () => {
  const p = pluginDir('export default {}');
  try {
    const t = parseTuning({ isolation: 'worker', 'worker-heap-mb': '128' }, false);
    assert.equal(t.isolation, 'worker');
    assert.deepEqual(t.workerLimits, { maxOldGenerationSizeMb: 128 });
    const resolved = resolveOptions({ plugin: p.entry, ...tunedHostOptions(t, false, undefined) });
    assert.equal(resolved.isolation, 'worker');
    assert.equal(resolved.workerLimits.maxOldGenerationSizeMb, 128);
    assert.equal(resolveOptions({ plugin: p.entry }).isolation, 'inline', 'inline by default');
    configError(() => parseTuning({ isolation: 'thread' }, false), /--isolation must be "inline" or "worker"/);
    const file = p.write(JSON.stringify({ isolation: 'worker', hangTimeout: 500 }), 'hotline.json');
    assert.equal(parseTuning({ config: file }, false).isolation, 'worker');
    assert.equal(parseTuning({ config: file, isolation: 'inline' }, false).isolation, 'inline', 'the flag wins');
    configError(() => validateConfig({ isolation: 3 }, 'f.json'), /isolation: must be "inline" or "worker"/);
    configError(() => resolveOptions({ plugin: p.entry, isolation: 'x' as 'worker' }), /isolation must be/);
  } finally {
    p.remove();
  }
});
