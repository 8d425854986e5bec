/**
 * issue 15: the link's state machine with a fake socket and a fake gate: events wait while the gate is suspended and
 * go out in order after; a link ended before it opened retries without an onLinkClose; a closed link refuses sends.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HostLink, type LinkEvent, type LinkGate, type LinkSnapshot, type LinkTarget } from '../../src/links/link.js';
import { linkSpec } from '../../src/links/link-options.js';
import type { LinkSocket, LinkSocketEvents } from '../../src/links/link-socket.js';
import { until } from '../helpers/until.js';

function rig(deferred = false) {
  const sockets: Array<{ events: LinkSocketEvents; written: unknown[]; reading: boolean; consumed: Buffer[]; detached: boolean }> = [];
  const seen: string[] = [];
  const target: LinkTarget = {
    linkEvent: (e: LinkEvent) => void seen.push(e.kind === 'message' ? `message:${String(e.data)}` : e.kind),
    handlerError: () => undefined,
  };
  let parked: { pump(): void } | undefined;
  const gate: LinkGate & { suspended: boolean } = {
    target,
    suspended: false,
    park: (w) => void (parked = w),
    enter: () => undefined,
    leave: () => undefined,
    limits: { maxQueuedMessages: 100 },
  };
  const connect = (_spec: unknown, events: LinkSocketEvents): LinkSocket => {
    const s = { events, written: [] as unknown[], reading: true, consumed: [] as Buffer[], detached: false };
    sockets.push(s);
    return {
      write: (d) => (s.written.push(d), 1),
      buffered: 0,
      pause: () => void (s.reading = false),
      resume: () => void (s.reading = true),
      close: () => events.ended('closed', 'HOTLINE_E_LINK_CLOSED'),
      handoff: () => undefined,
      detach: () => void (s.detached = true),
      consume: (head) => void s.consumed.push(head),
    };
  };
  const link = new HostLink(linkSpec('up', { url: 'tcp://127.0.0.1:1', backoff: { initialDelay: 1, maxDelay: 2 } }), gate, {
    connect,
    random: () => 0,
    log: () => undefined,
  }, deferred);
  link.addClaim(target, undefined);
  return { link, gate, sockets, seen, connect, resume: () => parked?.pump() };
}

test('events wait while the gate is suspended and are dispatched in order after', () => {
  const r = rig();
  r.sockets[0]!.events.opened();
  r.gate.suspended = true;
  r.sockets[0]!.events.message('a', 1);
  r.sockets[0]!.events.message('b', 1);
  assert.deepEqual(r.seen, ['open']);
  r.gate.suspended = false;
  r.resume();
  assert.deepEqual(r.seen, ['open', 'message:a', 'message:b']);
});

test('a failed attempt retries without onLinkClose; sends queue until open, then follow the hooks; closed refuses', async () => {
  const r = rig();
  r.link.send('q1');
  r.sockets[0]!.events.ended('refused', 'HOTLINE_E_LINK_CONNECT');
  assert.equal(r.link.phase, 'backoff');
  await until(() => r.sockets.length === 2, 'the retry');
  r.sockets[1]!.events.opened();
  assert.deepEqual(r.seen, ['open'], 'the first open is not a reconnect, and no close for a failed attempt');
  assert.deepEqual(r.sockets[1]!.written, ['q1']);
  assert.equal(r.link.status().reconnects, 0);
  r.link.close('done');
  assert.equal(r.link.phase, 'closed');
  assert.throws(() => r.link.send('x'), { code: 'HOTLINE_E_LINK_CLOSED' });
  assert.deepEqual(r.seen, ['open', 'close']);
});

test('link options are checked by name', () => {
  assert.throws(() => linkSpec('up', { url: 'http://x:1' }), { code: 'HOTLINE_E_LINK_OPTIONS' });
  assert.throws(() => linkSpec('up', { url: 'tcp://127.0.0.1' }), { code: 'HOTLINE_E_LINK_OPTIONS' });
  assert.throws(() => linkSpec('up', { url: 'ws://127.0.0.1:1', framing: 'lines' }), { code: 'HOTLINE_E_LINK_OPTIONS' });
  assert.throws(() => linkSpec('bad name', { url: 'tcp://127.0.0.1:1' }), { code: 'HOTLINE_E_LINK_OPTIONS' });
  assert.throws(() => linkSpec('up', { url: 'tcp://127.0.0.1:1', maxQueuedSends: 0 }), { code: 'HOTLINE_E_LINK_OPTIONS' });
  assert.equal(linkSpec('up', { url: 'tcp://127.0.0.1:1' }).key, linkSpec('up', { url: 'tcp://127.0.0.1:1', framing: 'lines' }).key);
});

const snapshot = (over: Partial<LinkSnapshot> = {}): LinkSnapshot => ({
  state: { n: 1 },
  version: 'v1',
  counters: { reconnects: 2, bytesIn: 9, bytesOut: 3, messagesIn: 4, messagesOut: 1, framingErrors: 0, dropped: 0, handlersAbandoned: 0, upgradesMoved: 0, upgradesReconnected: 0 },
  attempt: 0,
  everOpened: true,
  open: true,
  sends: ['old-1'],
  events: [{ kind: 'message', data: 'carried' }],
  ...over,
});

test('upgrade, new process: a deferred link neither connects nor writes before start(); the adopted socket then reads, carried sends first', () => {
  const r = rig(true);
  assert.equal(r.sockets.length, 0, 'no connect while deferred');
  r.link.send('new-1');
  r.gate.suspended = true;
  r.link.adopt(snapshot(), { make: (events) => r.connect(undefined, events), head: Buffer.from('par') });
  const s = r.sockets[0]!;
  assert.deepEqual(s.consumed, [Buffer.from('par')], 'the partial frame is parsed first');
  r.link.send('new-2');
  assert.deepEqual(s.written, [], 'nothing written before the commit');
  assert.equal(r.link.status().reconnects, 2, 'counters carried');
  assert.equal(r.link.status().upgradesMoved, 1);
  r.link.start();
  assert.deepEqual(s.written, ['old-1', 'new-1', 'new-2'], "the old process's queued sends go first");
  r.gate.suspended = false;
  r.resume();
  assert.deepEqual(r.seen, ['message:carried'], 'the carried event is dispatched, no open: the connection never dropped');
  assert.equal(r.link.phase, 'open');
});

test('upgrade, new process: a link whose socket could not move hears a close, then reconnects at start(), counted', () => {
  const r = rig(true);
  r.link.adopt(snapshot({ events: [] }), { reason: 'TLS' });
  assert.equal(r.sockets.length, 0);
  r.link.start();
  assert.equal(r.sockets.length, 1, 'connects at the commit');
  r.sockets[0]!.events.opened();
  assert.deepEqual(r.seen, ['close', 'reconnect', 'open']);
  assert.equal(r.link.status().reconnects, 3);
  assert.equal(r.link.status().upgradesReconnected, 1);
  assert.deepEqual(r.sockets[0]!.written, ['old-1']);
});

test('upgrade, old process: freeze stops reconnecting and reading, thaw carries on; letGo detaches without an event', async () => {
  const r = rig();
  r.sockets[0]!.events.opened();
  r.gate.suspended = true;
  r.sockets[0]!.events.message('x', 1);
  const snap = r.link.freeze();
  assert.equal(r.sockets[0]!.reading, false, 'nothing more is read once the snapshot is taken');
  assert.deepEqual(snap.events, [{ kind: 'message', data: 'x' }]);
  assert.equal(snap.open, true);
  r.link.thaw();
  assert.equal(r.sockets[0]!.reading, true);
  // Frozen in backoff: no retry until thawed.
  r.sockets[0]!.events.ended('reset');
  r.link.freeze();
  const settled = r.sockets.length;
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.equal(r.sockets.length, settled, 'no reconnect while frozen');
  r.link.thaw();
  await until(() => r.sockets.length === settled + 1, 'the reconnect after thaw');
  r.sockets[1]!.events.opened();
  r.link.freeze();
  const before = [...r.seen];
  r.link.letGo(true);
  assert.equal(r.sockets[1]!.detached, true);
  assert.equal(r.link.phase, 'closed');
  r.gate.suspended = false;
  r.resume();
  assert.deepEqual(r.seen, before, 'the old process dispatches nothing it handed over (its pending events moved)');
});
