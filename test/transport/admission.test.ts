/**
 * The per-IP admission module with a fake clock: connection counts per address, the handshake token bucket and its
 * refill, IPv4-mapped addresses, and the bound on addresses tracked.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { Admission, createAdmit, ipKey } from '../../src/transport/admission.js';
import type { HotlineError } from '../../src/errors.js';

class FakeSocket extends EventEmitter {
  close(): void {
    this.emit('close');
  }
}

function clock() {
  let t = 0;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

test('maxConnectionsPerIp: an address holds at most N sockets; a close frees a slot; other addresses are apart', () => {
  const c = clock();
  const a = new Admission({ maxConnectionsPerIp: 3, handshakeRatePerIp: Infinity }, c);
  const held = [new FakeSocket(), new FakeSocket(), new FakeSocket()];
  for (const s of held) assert.equal(a.admit('10.0.0.1', s), undefined);
  assert.equal(a.admit('10.0.0.1', new FakeSocket()), 'connections');
  assert.equal(a.admit('10.0.0.2', new FakeSocket()), undefined, 'another address is not affected');
  assert.equal(a.openFor('10.0.0.1'), 3);
  held[0]!.close();
  assert.equal(a.openFor('10.0.0.1'), 2);
  assert.equal(a.admit('10.0.0.1', new FakeSocket()), undefined);
  assert.equal(a.refusedConnections, 1);
  // An address that holds nothing is forgotten.
  held[1]!.close();
  held[2]!.close();
  assert.equal(a.openFor('10.0.0.1'), 1);
});

test('handshakeRatePerIp: a burst of one second passes, then the bucket refills at the rate', () => {
  const c = clock();
  const a = new Admission({ maxConnectionsPerIp: Infinity, handshakeRatePerIp: 10 }, c);
  for (let i = 0; i < 10; i++) assert.equal(a.admit('10.0.0.1', new FakeSocket()), undefined, `handshake ${i}`);
  assert.equal(a.admit('10.0.0.1', new FakeSocket()), 'rate');
  assert.equal(a.admit('10.0.0.9', new FakeSocket()), undefined, 'the bucket is per address');
  c.advance(99);
  assert.equal(a.admit('10.0.0.1', new FakeSocket()), 'rate', '0.99 of a token is not a token');
  c.advance(1);
  assert.equal(a.admit('10.0.0.1', new FakeSocket()), undefined, 'one token after 100 ms at 10/s');
  assert.equal(a.admit('10.0.0.1', new FakeSocket()), 'rate');
  // A long pause refills to the burst, not beyond.
  c.advance(60_000);
  let passed = 0;
  while (a.admit('10.0.0.1', new FakeSocket()) === undefined) passed++;
  assert.equal(passed, 10);
  // A sustained flood gets the rate: 1,000 attempts over 10 s, one every 10 ms, pass ~10/s.
  c.advance(1000);
  let ok = 0;
  for (let i = 0; i < 1000; i++) {
    if (a.admit('10.0.0.1', new FakeSocket()) === undefined) ok++;
    c.advance(10);
  }
  assert.ok(ok >= 100 && ok <= 111, `passed ${ok}`);
});

test('a refused handshake spends no token, and a refusal for connections spends none either', () => {
  const c = clock();
  const a = new Admission({ maxConnectionsPerIp: 1, handshakeRatePerIp: 2 }, c);
  const s = new FakeSocket();
  assert.equal(a.admit('1.2.3.4', s), undefined);
  assert.equal(a.admit('1.2.3.4', new FakeSocket()), 'connections');
  s.close();
  assert.equal(a.admit('1.2.3.4', new FakeSocket()), undefined, 'the second token was still there');
  assert.equal(a.admit('1.2.3.4', new FakeSocket()), 'rate');
});

test('IPv4-mapped IPv6 is the same client; addresses tracked stay bounded', () => {
  assert.equal(ipKey('::ffff:127.0.0.1'), '127.0.0.1');
  assert.equal(ipKey('::1'), '::1');
  const c = clock();
  const a = new Admission({ maxConnectionsPerIp: 1, handshakeRatePerIp: 5 }, c, 100);
  assert.equal(a.admit('::ffff:10.1.1.1', new FakeSocket()), undefined);
  assert.equal(a.admit('10.1.1.1', new FakeSocket()), 'connections');
  // 10,000 addresses that each connect once and leave: at most 100 are remembered.
  for (let i = 0; i < 10_000; i++) {
    const s = new FakeSocket();
    a.admit(`2001:db8::${i.toString(16)}`, s);
    s.close();
  }
  assert.ok(a.tracked <= 101, `tracked ${a.tracked}`);
  assert.equal(a.openFor('10.1.1.1'), 1, 'an address holding a socket is never forgotten');
});

test('createAdmit: off when both limits are off; refusals reported with HOTLINE_E_IP_LIMIT at most once a second', () => {
  assert.equal(createAdmit({ maxConnectionsPerIp: Infinity, handshakeRatePerIp: Infinity }, () => undefined), undefined);
  const c = clock();
  const reports: HotlineError[] = [];
  const admit = createAdmit({ maxConnectionsPerIp: Infinity, handshakeRatePerIp: 1 }, (e) => reports.push(e), c)!;
  assert.equal(admit.check('10.0.0.1', new FakeSocket()), undefined);
  for (let i = 0; i < 100; i++) assert.equal(admit.check('10.0.0.1', new FakeSocket()), 'rate');
  assert.equal(reports.length, 1);
  assert.equal(reports[0]!.code, 'HOTLINE_E_IP_LIMIT');
  c.advance(1000);
  admit.check('10.0.0.1', new FakeSocket());
  admit.check('10.0.0.1', new FakeSocket());
  assert.equal(reports.length, 2);
  assert.match(reports[1]!.message, /100 refused since the last report|\d+ refused since the last report/);
});
