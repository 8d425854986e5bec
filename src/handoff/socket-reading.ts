/**
 * Stopping and restarting a socket's reads at the handle, below the stream. Node internals (`_handle`, its
 * `reading` flag), kept to this file like the pipe internals of handle-lane.ts and the ws internals of ws-frames.ts.
 */
import type net from 'node:net';

interface ReadHandle {
  reading: boolean;
  readStart(): number;
  readStop(): number;
}

function handleOf(socket: net.Socket): ReadHandle | null | undefined {
  return (socket as unknown as { _handle?: ReadHandle | null })._handle;
}

/**
 * pause() only stops 'data' events: the stream keeps reading from the kernel into its buffer up to its high-water
 * mark, and those bytes would reach this process instead of the one they are meant for. Stop the handle itself, as
 * net.Socket#pause does for sockets with an `onread` buffer; startReading (or resume() through _read) undoes it.
 */
export function stopReading(socket: net.Socket): void {
  const handle = handleOf(socket);
  if (handle?.reading) {
    handle.reading = false;
    handle.readStop();
  }
}

/**
 * The undo of stopReading. resume() alone may not restart the handle: the stream can believe a read is already
 * pending (its `reading` flag) and never call _read again.
 */
export function startReading(socket: net.Socket): void {
  const handle = handleOf(socket);
  if (handle && !handle.reading && !socket.isPaused()) {
    handle.reading = true;
    handle.readStart();
  }
}
