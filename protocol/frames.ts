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

/** What an accepted send is answered with: its seq and envelope id, and the sender's clientId. */
export interface AckItem {
  clientId?: string;
  seq: number;
  id: string;
}

export type ServerFrame =
  | WelcomeFrame
  | ({ type: "ack" } & AckItem)
  | { type: "message"; message: Envelope }
  // Coalesced frames, only to sockets that connected with batch=1 (SPEC §4): several envelopes in seq order, gap-free with the frames around them.
  | { type: "messages"; messages: Envelope[] }
  // The acks of several sends accepted together, in the order of the sends.
  | { type: "acks"; acks: AckItem[] }
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
