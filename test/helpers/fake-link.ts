/**
 * A Link (the transport side of a Connection) that goes nowhere, for tests of the dispatcher and connections
 * themselves. `overrides` replaces what a test wants to see, for example `send` to record what is sent.
 */
import type { Link } from '../../src/connection/link.js';

export function fakeLink(overrides: Partial<Link> = {}): Link {
  return {
    transport: 'ws',
    remoteAddress: '127.0.0.1',
    bufferedAmount: 0,
    send: () => undefined,
    close: () => undefined,
    terminate: () => undefined,
    pauseReading: () => undefined,
    resumeReading: () => undefined,
    ...overrides,
  };
}
