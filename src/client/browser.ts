/**
 * `hotline/client` for browsers: the session client with the browser's own WebSocket.
 */
import { type ClientOptions, HotlineClient, type WebSocketConstructor } from './client.js';

export { HotlineClient } from './client.js';
export type { ClientEvents, ClientOptions, ClientState, WebSocketConstructor, WebSocketLike } from './client.js';
export type { Payload } from '../session/protocol.js';

/**
 * Connect to a hotline host that has `sessions` on. Reconnects and resumes by itself.
 *
 * @example
 * import { connect } from 'hotline/client';
 *
 * const client = connect(`ws://${location.host}/`);
 * client.on('reconnecting', () => (status.textContent = 'reconnecting…'));
 * client.on('resumed', () => (status.textContent = 'online'));
 * client.on('message', (text) => addLine(String(text)));
 */
export function connect(url: string | (() => string), options: ClientOptions = {}): HotlineClient {
  const WS = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (!WS) throw new TypeError('no WebSocket in this environment: pass options.WebSocket');
  return new HotlineClient(url, WS, options);
}
