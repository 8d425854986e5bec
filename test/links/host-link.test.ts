/**
 * issue 15: the link's state machine with a fake socket and a fake gate: events wait while the gate is suspended and
 * go out in order after; a link ended before it opened retries without an onLinkClose; a closed link refuses sends.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HostLink, type LinkEvent, type LinkGate, type LinkTarget } from '../../src/links/link.js';
import { linkSpec } from '../../src/links/link-options.js';
import type { LinkSocket, LinkSocketEvents } from '../../src/links/link-socket.js';
import { until } from '../helpers/until.js';

function rig() {
  const sockets: Array<{ events: LinkSocketEvents; written: unknown[] }> = [];
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
    const s = { events, written: [] as unknown[] };
    sockets.push(s);
    return {
      write: (d) => (s.written.push(d), 1),
      buffered: 0,
      pause() {},
      resume() {},
      close: () => events.ended('closed', 'HOTLINE_E_LINK_CLOSED'),
      handoff: () => undefined,
      detach() {},
      consume() {},
    };
  };
  const link = new HostLink(linkSpec('up', { url: 'tcp://127.0.0.1:1', backoff: { initialDelay: 1, maxDelay: 2 } }), gate, {
    connect,
    random: () => 0,
    log: () => undefined,
  });
  link.addClaim(target, undefined);
  return { link, gate, sockets, seen, resume: () => parked?.pump() };
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
