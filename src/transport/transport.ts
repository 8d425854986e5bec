/**
 * What the host gives a transport, and what a transport gives the host. A transport owns its listener and sockets,
 * turns bytes into messages, and hands each accepted socket to the host as a `Link`.
 */
import type { Server as HttpServer } from 'node:http';
import type { WebSocket } from 'ws';
import type { Connection } from '../connection/connection.js';
import type { Link } from '../connection/link.js';
import type { HotlineError } from '../errors.js';
import type { TransportKind } from '../plugin/contract.js';
import type { FramingKind } from '../framing/framing.js';
import type { IncompleteFrames } from './incomplete-frames.js';
import type { TlsOptions } from './tls.js';
import type { Admit } from './admission.js';
import type { HandshakePacer } from './handshake-pacer.js';

/** A WebSocket listener: its own HTTP server on `port`, or attached to an existing `server`. */
export interface WsListenOptions {
  transport: 'ws';
  /** Port for hotline's own HTTP server. 0 picks a free port. Ignored with `server`. */
  port?: number;
  host?: string;
  /** Only upgrades to this path are taken (default: every path). Useful when attached to an app's server. */
  path?: string;
  /** Attach to this existing HTTP server instead of starting one: the app keeps its routes, hotline takes upgrades. */
  server?: HttpServer;
  /**
   * Serve `wss://`: hotline's own server speaks TLS with this certificate and key (PEM file paths). Not with `server`
   * (pass an `https.Server` there instead). TLS connections cannot move in a process upgrade: they are sent away (1012 and a reconnect hint).
   */
  tls?: TlsOptions;
  /** @internal A bound socket handle from the upgrade supervisor (src/handoff): listen on it instead of `port`. */
  handle?: object;
}

/** A TCP listener with one framing. */
export interface TcpListenOptions {
  transport: 'tcp';
  port?: number;
  host?: string;
  /** `lines` (newline-delimited text, default) or `length` (4-byte big-endian length prefix). */
  framing?: FramingKind;
  /** Speak TLS (`tls://`) with this certificate and key (PEM file paths). Sent away, not moved, by a process upgrade. */
  tls?: TlsOptions;
  /** @internal A bound socket handle from the upgrade supervisor (src/handoff): listen on it instead of `port`. */
  handle?: object;
}

export type ListenOptions = WsListenOptions | TcpListenOptions;

/** Where a listener is reachable. */
export interface ListenAddress {
  transport: TransportKind;
  host: string;
  port: number;
  /** `ws://host:port/path` or `tcp://host:port`; `wss://` and `tls://` with TLS. */
  url: string;
  framing?: FramingKind;
  /** True when the listener speaks TLS. */
  tls?: boolean;
}

export interface TransportLimits {
  maxPayload: number;
  maxConnections: number;
  handshakeTimeout: number;
  /** WebSocket ping period in ms; 0: no pings. */
  pingInterval: number;
  pongTimeout: number;
}

/** @internal The host as a transport sees it (kept out of the published .d.ts: it names `ws` types). */
export interface TransportHost {
  readonly limits: TransportLimits;
  /** The partial-frame budget and timeout shared by every connection of the host (src/transport/incomplete-frames.ts). */
  readonly incomplete: IncompleteFrames;
  /** True while the host accepts another connection. */
  canAccept(): boolean;
  accept(link: Link): Connection;
  /** A connection-level failure with a code (payload too large, refused, handshake timeout). */
  reportError(err: HotlineError, conn?: Connection): void;
  /**
   * Present when a per-IP limit is on (admission.ts): asked before any work is done for a new socket; a refusal is
   * answered WS 429 (rate, after a hold) or 503 (connections) before the upgrade, TCP by closing the socket.
   */
  readonly admit?: Admit;
  /** Paces the host's handshake work (handshake-pacer.ts): an upgrade completes through it. */
  readonly pacer: HandshakePacer;
  /** Present when sessions are on: takes each WebSocket that chose the `hotline.v1` subprotocol (src/session). */
  readonly sessions?: { attach(ws: WebSocket, remoteAddress: string): void };
}

/** @internal A listener the host runs. */
export interface Transport {
  start(): Promise<void>;
  address(): ListenAddress;
  /** Stop accepting new connections. Existing ones are left to the host. Idempotent. */
  stopAccepting(): Promise<void>;
}

/** Bracket an IPv6 host for a URL. */
export function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** A listener's URL: `ws://host:port/path` or `tcp://host:port`; `wss://` and `tls://` with TLS. */
export function listenUrl(transport: TransportKind, tls: boolean, host: string, port: number, path = '/'): string {
  const scheme = transport === 'ws' ? (tls ? 'wss' : 'ws') : tls ? 'tls' : 'tcp';
  return `${scheme}://${formatHost(host)}:${port}${transport === 'ws' ? path : ''}`;
}
