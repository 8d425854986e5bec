/**
 * Room deliveries to one socket within one turn of the event loop leave in one system call. On loopback and on most
 * servers a socket write costs more in the kernel than in JavaScript (measured here: ~8 µs of system time per write
 * against ~3 µs of user time), and a busy room server often handles several messages for the same room in one turn
 * (two publishes in one read): corking each member's socket at its first room write of the turn and uncorking them
 * all once the turn's I/O callbacks ran turns those writes into one `writev`.
 *
 * Bounded: a socket holds at most FLUSH_BYTES corked (then it is uncorked at once, so a big turn neither holds the
 * memory nor trips the maxSendBuffer rule, which counts corked bytes), and every socket corked here is uncorked in
 * the same turn's check phase (setImmediate). Only corks taken here are released here.
 */
import type { Writable } from 'node:stream';

/** Bytes a socket may hold corked before they are written anyway: one writev of this size amortises the call. */
const FLUSH_BYTES = 16 * 1024;

const corked = new Set<Writable>();
let scheduled = false;

function uncorkAll(): void {
  scheduled = false;
  // A socket destroyed meanwhile takes uncork() as a no-op.
  for (const s of corked) s.uncork();
  corked.clear();
}

/** Call before a room write to `socket`: cork it until the end of this turn, or flush what it holds corked. */
export function corkForTurn(socket: Writable): void {
  if (corked.has(socket)) {
    if (socket.writableLength >= FLUSH_BYTES) {
      corked.delete(socket);
      socket.uncork();
    }
    return;
  }
  // Corked by someone else (released by them), or a backlog already waiting on the kernel: corking adds nothing.
  if (socket.writableCorked > 0 || socket.writableLength >= FLUSH_BYTES) return;
  socket.cork();
  corked.add(socket);
  if (!scheduled) {
    scheduled = true;
    setImmediate(uncorkAll);
  }
}
