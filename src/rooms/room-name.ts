/**
 * The bounds on rooms, checked where a name enters (join, to, members) and where membership arrives from another
 * process (an upgrade's transfer, src/handoff/transfer-codec.ts; a session record, src/session and src/cluster): one connection cannot make the host hold an
 * unbounded number of rooms, or names of unbounded size.
 */
import { HotlineError } from '../errors.js';

/** Rooms one connection may be in at once; a join past it throws HOTLINE_E_ROOM_LIMIT. */
export const MAX_ROOMS_PER_CONNECTION = 128;
/** Bytes of UTF-8 in a room name. 255, so the compact upgrade transfer carries a name's length in one byte. */
export const MAX_ROOM_NAME_BYTES = 255;

/**
 * Why `name` cannot be a room name, or undefined when it can: a non-empty, well-formed string of at most
 * MAX_ROOM_NAME_BYTES bytes of UTF-8. Well-formed, because a lone surrogate does not survive UTF-8 (the upgrade's
 * transfer) and would come back as another room.
 */
export function roomNameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string') return `a room name must be a string, got ${typeof name}`;
  if (name.length === 0) return 'a room name must not be empty';
  // UTF-8 takes at least one byte per UTF-16 unit: a longer string cannot fit, and is not measured.
  if (name.length > MAX_ROOM_NAME_BYTES || Buffer.byteLength(name) > MAX_ROOM_NAME_BYTES) {
    return `a room name must be at most ${MAX_ROOM_NAME_BYTES} bytes of UTF-8`;
  }
  if (!(name as string & { isWellFormed(): boolean }).isWellFormed()) return 'a room name must be well-formed UTF-16 (no lone surrogate)';
  return undefined;
}

/** Throw HOTLINE_E_ROOM_NAME unless `name` is a valid room name. */
export function checkRoomName(name: unknown): asserts name is string {
  const problem = roomNameProblem(name);
  if (problem) throw new HotlineError('HOTLINE_E_ROOM_NAME', problem);
}

/**
 * Why `rooms` cannot be a connection's room list read from outside this process (a session record in a file or in
 * the NATS bucket), or undefined when it can: an array of at most MAX_ROOMS_PER_CONNECTION distinct valid names, the
 * most joins could have made.
 */
export function roomListProblem(rooms: unknown): string | undefined {
  if (!Array.isArray(rooms)) return 'rooms must be an array';
  if (rooms.length > MAX_ROOMS_PER_CONNECTION) return `${rooms.length} rooms, over the ${MAX_ROOMS_PER_CONNECTION} a connection may be in`;
  const seen = new Set<string>();
  for (const room of rooms as unknown[]) {
    const problem = roomNameProblem(room);
    if (problem) return problem;
    if (seen.has(room as string)) return 'a room is listed twice';
    seen.add(room as string);
  }
  return undefined;
}
