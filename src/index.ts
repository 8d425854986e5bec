export { createHost, Host } from './host/host.js';
export type { HostEvents, HostState, HostStatus, LiveVersionStatus, ReloadOptions } from './host/host.js';
export type { CanaryPolicy, Handshake, PinPolicy, ReloadPolicy } from './swap/reload-policy.js';
export type { ClusterOptions, HostLimits, HostOptions } from './host/options.js';
export type { PresenceOptions } from './cluster/presence-options.js';
export type { PresenceStatus } from './cluster/nats-presence.js';
export type { PeerPhase, PeerStatus } from './cluster/presence-view.js';
export { definePlugin, HOST_API } from './plugin/contract.js';
export type {
  CloseInfo,
  Conn,
  DeliveryOptions,
  Link,
  LinkCloseInfo,
  LinkOptions,
  LinkPhase,
  LinkStatus,
  MessageData,
  PluginContext,
  PluginDefinition,
  PresenceChange,
  PreviousVersion,
  Recipients,
  TransportKind,
} from './plugin/contract.js';
export { ERROR_CODES, HotlineError, isHotlineError } from './errors.js';
export type { ErrorCode } from './errors.js';
export type { SwapPhase, SwapRecord, SwapTrigger } from './swap/history.js';
export type { ProbationOptions } from './swap/probation.js';
export type { VersionStats } from './runtime/version-stats.js';
export type { ListenAddress, ListenOptions, TcpListenOptions, WsListenOptions } from './transport/transport.js';
export type { FramingKind } from './framing/framing.js';
export type { TlsOptions } from './transport/tls.js';
export type { WatchOptions } from './watch/watcher.js';
export { MemorySessionStore } from './session/memory-store.js';
export { FileSessionStore } from './session/file-store.js';
export { NatsSessionStore, type NatsSessionStoreOptions, type NatsSessionStoreStatus } from './cluster/nats-session-store.js';
export { NatsLink, type NatsLinkOptions, type NatsLinkState, type NatsLinkStatus } from './cluster/nats-connection.js';
export type { ClusterOptions as RoomBusOptions, OriginCounts, RoomBusStatus } from './cluster/room-bus.js';
export type { FileStoreOptions } from './session/file-store.js';
export type { SessionChange, SessionRecord, SessionStore, StoredMessage, StoreOptions } from './session/store.js';
export type { DrainOptions, SendAwayOptions, SessionOptions } from './session/options.js';
export type { DrainBatch, SendAwayBatch } from './host/send-away.js';
export type { StateOptions } from './state/options.js';
export type { CheckpointStatus } from './state/checkpointer.js';
export type { HttpAdminOptions } from './ops/http-admin-options.js';
export type { HttpAdminAddress } from './ops/http-address.js';
