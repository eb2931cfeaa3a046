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

/** Ephemeral signals: no seq, never stored, delivered to whoever is connected. */
export type SignalFrame = Extract<ServerFrame, { type: "typing" | "read" | "presence" }>;
