/**
 * The one interface every transport implements. A transport is a single
 * connection attempt: it opens (or fails to), delivers what the server sends,
 * and reports once when it ends. It never reconnects by itself: the Room
 * decides when, how and on which transport to try again, so backoff,
 * fallback and resume live in one place.
 */
import type { Envelope, UserRef } from "../../../protocol/envelope.js";
import type { PresenceMember, ServerFrame, SignalFrame } from "../../../protocol/frames.js";
import type { RoomError } from "../errors.js";
import type { ClientFrame } from "../frames.js";

export type TransportKind = "websocket" | "sse" | "longpoll";

/** What a transport learned when it opened. */
export interface OpenInfo {
  /** The room's last seq at open (WebSocket welcome, long-poll answer). */
  seq?: number;
  /** Who the server says we are (WebSocket welcome). */
  user?: UserRef;
  /** Who is in the room (WebSocket welcome). */
  presence?: PresenceMember[];
}

export interface CloseInfo {
  /** Whether it had opened before it ended. */
  wasOpen: boolean;
  /** Why, when the transport knows (an HTTP error of long-poll, a timeout). Browsers hide it for WebSocket and EventSource. */
  error?: RoomError;
}

/** How a transport reports to its Room. Calls stop once the Room closes the transport. */
export interface TransportEvents {
  opened(transport: Transport, info: OpenInfo): void;
  envelope(transport: Transport, envelope: Envelope): void;
  signal(transport: Transport, frame: SignalFrame): void;
  /** WebSocket only: acks and errors addressed to this connection. */
  reply(transport: Transport, frame: Extract<ServerFrame, { type: "ack" | "error" }>): void;
  closed(transport: Transport, info: CloseInfo): void;
}

export interface Transport {
  readonly kind: TransportKind;
  readonly isOpen: boolean;
  /** Starts the connection, resuming after `after` when given. */
  open(after: number | undefined): void;
  /** Puts a frame on the wire; false when this transport cannot (only WebSocket can). */
  sendFrame(frame: ClientFrame): boolean;
  /** Ends the connection from our side. No event is reported after this. */
  close(): void;
}
