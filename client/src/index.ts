/**
 * Browser and Node client for realtime rooms: `connect()` a room, listen to
 * its events, send. See client/README.md.
 */
export { connect } from "./connect.js";
export { unreadCounts, type UnreadCounts, type UnreadRoom, type UnreadOptions } from "./unread.js";
export { Room, type HistoryOptions, type HistoryPage, type SendOptions } from "./room.js";
export type { Ack } from "./outbox.js";
export type { ConnectOptions } from "./options.js";
export type { RoomEvents, RoomStatus, PresenceEvent, TypingEvent, ReadEvent } from "./events.js";
export { RoomError, type RoomErrorCode, type LocalErrorCode } from "./errors.js";
export type { RefreshToken } from "./token.js";
export type { BackoffOptions } from "./backoff.js";
export type { TransportKind } from "./transports/transport.js";
export type { WebSocketConstructor, WebSocketLike } from "./transports/websocket.js";
export type { EventSourceConstructor, EventSourceLike } from "./transports/sse.js";
export type { FetchLike } from "./http-api.js";
export type { Envelope, EventData, UserRef } from "../../protocol/envelope.js";
export type { PresenceMember } from "../../protocol/frames.js";
export { openRoom, RoomSession, type RoomSessionOptions, type RoomSessionEvents } from "./session.js";
export { TokenSource, tokenFromUrl, type GetToken, type TokenSourceOptions, type TokenSourceEvents } from "./token-source.js";
