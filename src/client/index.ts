/**
 * `hotline/client` for Node: the session client with `ws` as its WebSocket. Browsers get src/client/browser.ts
 * through the `browser` condition of the package's exports.
 */
import WebSocket from 'ws';
import { type ClientOptions, HotlineClient, type WebSocketConstructor } from './client.js';

export { HotlineClient } from './client.js';
export type { ClientEvents, ClientOptions, ClientState, WebSocketConstructor, WebSocketLike } from './client.js';
export type { BackoffOptions } from './backoff.js';
export type { Payload } from '../session/protocol.js';

/**
 * Connect to a hotline host that has `sessions` on. Reconnects and resumes by itself.
 *
 * @example
 * import { connect } from 'hotline/client';
 *
 * const client = connect('ws://127.0.0.1:8080/');
 * client.on('message', (data) => console.log('got', data));
 * client.on('reconnecting', ({ attempt, delay }) => console.log(`reconnecting (#${attempt}) in ${delay} ms`));
 * client.on('lost-session', ({ code, unacked }) => console.warn(code, unacked.length, 'messages unconfirmed'));
 * client.send('hello');   // queued while disconnected, sent exactly once
 */
export function connect(url: string | (() => string), options: ClientOptions = {}): HotlineClient {
  return new HotlineClient(url, options.WebSocket ?? (WebSocket as unknown as WebSocketConstructor), options);
}
