/**
 * The receiving end of a handle lane for handle-lane.test.ts: reads fd 4, and for each message checks that the
 * socket handle paired with it is the one the message names (its peer port). Reports counts on `{ end: true }`.
 */
import { HandleLane, LANE_FD } from '../../src/handoff/handle-lane.js';

type Msg = { port: number; pad: string } | { end: true };

let received = 0;
let mismatched = 0;
let missing = 0;
const lane = new HandleLane<Msg>(LANE_FD);
lane.read((msg, handle) => {
  if ('end' in msg) {
    process.send!({ received, mismatched, missing }, () => process.exit(0));
    return;
  }
  received++;
  if (!handle) return void missing++;
  const peer: { port?: number } = {};
  (handle as { getpeername(out: object): number }).getpeername(peer);
  if (peer.port !== msg.port) mismatched++;
  (handle as { close(): void }).close();
});
process.send!({ ready: true });
