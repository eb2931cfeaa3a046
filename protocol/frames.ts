/**
 * WebSocket frames, both directions. Client frames are validated by
 * `clientFrameSchema` in ./schemas.ts; server frames are built only here so
 * every transport words them the same way.
 */
import type { Envelope, UserRef } from "./envelope";
import type { ErrorCode } from "./errors";

export interface WelcomeFrame {
  type: "welcome";
  room: string;
  seq: number;
  user: UserRef;
  presence: PresenceMember[];
}

export interface PresenceMember extends UserRef {
  /** How many live connections (any transport) this user holds in the room. */
  connections: number;
}

export type ServerFrame =
  | WelcomeFrame
  | { type: "ack"; clientId?: string; seq: number; id: string }
  | { type: "message"; message: Envelope }
  | { type: "typing"; user: UserRef }
  | { type: "read"; user: UserRef; seq: number }
  | { type: "presence"; action: "join" | "leave"; user: UserRef }
  | { type: "pong" }
  | { type: "error"; code: ErrorCode; message: string; clientId?: string; retryAfter?: number };

/**
 * Client → server: the client has processed every event up to `seq`. The
 * first one opts the socket in to flow control: the room counts what it sent
 * and was not acknowledged, and closes the socket with 1013 past
 * WS_MAX_UNACKED_BYTES (docs/api.md, "Acknowledgements and slow sockets").
 * Validated by `clientFrameSchema`.
 */
export interface FlowAckFrame {
  type: "ack";
  seq: number;
}

/** Ephemeral signals: no seq, never stored, delivered to whoever is connected. */
export type SignalFrame = Extract<ServerFrame, { type: "typing" | "read" | "presence" }>;
