/**
 * A one-shot admin socket client: connect, send one request, read one response. Used by the CLI.
 */
import net from 'node:net';
import { HotlineError, type ErrorCode } from '../errors.js';
import type { AdminCommand, AdminResponse } from './protocol.js';

/** Send `cmd` and resolve with its result, or reject with the host's coded error. */
export function adminRequest(socketPath: string, cmd: AdminCommand, timeoutMs = 60_000, options: { force?: boolean; policy?: unknown } = {}): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    let buf = '';
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      fn();
    };
    const timer = setTimeout(
      () => finish(() => reject(new HotlineError('HOTLINE_E_ADMIN', `no answer to "${cmd}" within ${timeoutMs} ms`))),
      timeoutMs,
    );
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(JSON.stringify({ id: 1, cmd, ...(options.force && { force: true }), ...(options.policy !== undefined && { policy: options.policy }) }) + '\n'));
    socket.on('error', (err: NodeJS.ErrnoException) =>
      finish(() =>
        reject(
          new HotlineError('HOTLINE_E_ADMIN_UNREACHABLE', `no hotline host answers on ${socketPath} (${err.code ?? err.message})`, {
            cause: err,
          }),
        ),
      ),
    );
    socket.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl === -1) return;
      let res: AdminResponse;
      try {
        res = JSON.parse(buf.slice(0, nl)) as AdminResponse;
      } catch {
        return finish(() => reject(new HotlineError('HOTLINE_E_ADMIN', 'the host sent a response that is not JSON')));
      }
      // Whatever answers on the socket is read as untrusted: a response of the wrong shape is an error, not a throw.
      const err = res !== null && typeof res === 'object' && res.ok === false ? (res.error as unknown) : undefined;
      if (res !== null && typeof res === 'object' && res.ok === true) finish(() => resolve(res.result));
      else if (err !== null && typeof err === 'object' && typeof (err as { code?: unknown }).code === 'string' && typeof (err as { message?: unknown }).message === 'string') {
        const e = err as { code: string; message: string };
        finish(() => reject(new HotlineError(e.code as ErrorCode, e.message)));
      } else finish(() => reject(new HotlineError('HOTLINE_E_ADMIN', 'the host sent a response that is not an admin response')));
    });
    socket.on('close', () =>
      finish(() => reject(new HotlineError('HOTLINE_E_ADMIN', `the host closed the admin socket before answering "${cmd}"`))),
    );
  });
}
