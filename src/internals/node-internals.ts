/**
 * The Node internals hotline relies on, in one place (STYLE.md 13; test/structure/architecture.test.ts keeps them here,
 * and checkInternals() in self-check.ts refuses to start on a Node major it does not know or when one is missing).
 * All of them are stable since Node 12 and read here as they are in Node 20 (lib/net.js, lib/internal/child_process.js,
 * src/pipe_wrap.cc, src/stream_wrap.cc), which is what the tests run:
 * - a socket's libuv handle (`socket._handle`): sent over IPC on an upgrade, and stopped below the stream so no byte
 *   is read into the wrong process;
 * - `net._createServerHandle`: bind without listen, what cluster's shared handles use (the supervisor's listeners);
 * - `process.binding('pipe_wrap')` and `('stream_wrap')`: an IPC pipe on an arbitrary descriptor, the handle lane of
 *   an upgrade (src/handoff/handle-lane.ts). Node opens only its one `'ipc'` stdio as such a pipe.
 */
import net from 'node:net';

/** The read side of a stream handle (LibuvStreamWrap); `reading` is the flag lib/net.js keeps beside it. */
interface ReadHandle {
  reading: boolean;
  readStart(): number;
  readStop(): number;
}

/** The libuv handle under a socket (`_handle`): what `child.send(msg, handle)` carries; null once closed. */
export function rawHandle(socket: net.Socket): object | null | undefined {
  return (socket as unknown as { _handle?: object | null })._handle;
}

/**
 * pause() only stops 'data' events: the stream keeps reading from the kernel into its buffer up to its high-water
 * mark, and those bytes would reach this process instead of the one they are meant for. Stop the handle itself, as
 * net.Socket#pause does for sockets with an `onread` buffer; startReading (or resume() through _read) undoes it.
 */
export function stopReading(socket: net.Socket): void {
  const handle = rawHandle(socket) as ReadHandle | null | undefined;
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
  const handle = rawHandle(socket) as ReadHandle | null | undefined;
  if (handle && !handle.reading && !socket.isPaused()) {
    handle.reading = true;
    handle.readStart();
  }
}

/** A bound TCP server handle (libuv TCPWrap). */
export interface TcpServerHandle {
  close(): void;
  getsockname(out: { address?: string; port?: number }): number;
}

type CreateServerHandle = (address: string, port: number, addressType: number, fd?: number, flags?: number) => TcpServerHandle | number;

/** `net._createServerHandle`: bind without listen. Returns the handle, or a negative errno. */
export function createServerHandle(address: string, port: number, addressType: 4 | 6): TcpServerHandle | number {
  return (net as unknown as { _createServerHandle: CreateServerHandle })._createServerHandle(address, port, addressType);
}

/** The TCPWrap of a handle passed over IPC, or undefined when it is not one (no `getsockname`). */
export function asTcpHandle(handle: unknown): TcpServerHandle | undefined {
  const h = handle as Partial<TcpServerHandle> | undefined;
  return typeof h?.getsockname === 'function' ? (h as TcpServerHandle) : undefined;
}

/** An IPC pipe handle (src/pipe_wrap.cc, a LibuvStreamWrap). */
export interface PipeHandle {
  open(fd: number): number;
  readStart(): number;
  readStop(): number;
  writeBuffer(req: WriteReq, data: Uint8Array, sendHandle?: object): number;
  close(cb?: () => void): void;
  onread: (ab: ArrayBuffer | undefined) => void;
  pendingHandle: object | null;
  fd: number;
}

/** A write request (src/stream_wrap.cc WriteWrap). */
export interface WriteReq {
  handle: PipeHandle;
  oncomplete: (status: number) => void;
  async: boolean;
}

export interface PipeBinding {
  Pipe: new (type: number) => PipeHandle;
  constants: { IPC: number };
}

/** The shared state a stream handle's read and write report through (lib/internal/stream_base_commons.js). */
export interface StreamBinding {
  WriteWrap: new () => WriteReq;
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kArrayBufferOffset: number;
  kLastWriteWasAsync: number;
}

const binding = process as unknown as { binding(name: string): unknown };

/** `process.binding('pipe_wrap')`. */
export function pipeWrap(): PipeBinding {
  return binding.binding('pipe_wrap') as PipeBinding;
}

/** `process.binding('stream_wrap')`. */
export function streamWrap(): StreamBinding {
  return binding.binding('stream_wrap') as StreamBinding;
}

/** `process.binding('tcp_wrap')`: only for checkInternals(), which checks the TCP handle's read methods. */
export function tcpWrap(): unknown {
  return binding.binding('tcp_wrap');
}

/** The descriptor of a pipe handle received over Node's IPC (`fd`), undefined when it has none. */
export function handleFd(handle: unknown): number | undefined {
  const fd = (handle as { fd?: unknown } | null)?.fd;
  return typeof fd === 'number' ? fd : undefined;
}
