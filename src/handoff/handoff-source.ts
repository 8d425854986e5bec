/**
 * What a transport exposes of one live connection so a process upgrade can move it: the socket and what is needed
 * to rebuild its parser on the other side. Only plain `net.Socket`s qualify (TLS cannot move: nodejs/node#4037).
 */
import type net from 'node:net';
import type { WebSocket } from 'ws';
import type { FramingKind } from '../transport/framing/framing.js';

export type HandoffSource =
  | { kind: 'ws'; ws: WebSocket }
  | {
      kind: 'tcp';
      socket: net.Socket;
      framing: FramingKind;
      /** Bytes read from the socket but not yet decoded into a message. */
      unconsumed(): Buffer;
    };
