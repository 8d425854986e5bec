import type { Server } from 'node:net';
import { HotlineError } from '../errors.js';

/**
 * Bind `server` and resolve with the bound address (the real port when `port` is 0), or reject HOTLINE_E_LISTEN.
 * With `handle` (a bound socket a supervisor passed down, src/handoff), listen on it instead of binding.
 */
export function listen(server: Server, port: number, host: string, handle?: object): Promise<{ host: string; port: number }> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      reject(new HotlineError('HOTLINE_E_LISTEN', `cannot listen on ${host}:${port}: ${err.message}`, { cause: err }));
    };
    server.once('error', onError);
    const onListening = () => {
      server.off('error', onError);
      const addr = server.address();
      if (addr === null || typeof addr === 'string') return resolve({ host, port });
      resolve({ host: addr.address, port: addr.port });
    };
    if (handle) server.listen(handle, onListening);
    else server.listen(port, host, onListening);
  });
}
