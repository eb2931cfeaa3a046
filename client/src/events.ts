/** The events a room handle emits, and its connection status. */
import type { Envelope, UserRef } from "../../protocol/envelope.js";
import type { PresenceMember } from "../../protocol/frames.js";
import type { RoomError } from "./errors.js";
import type { TransportKind } from "./transports/transport.js";

/**
 * Where the connection stands, for the UI:
 * - `connecting`: the first connection is being made (`retryInMs` when it is waiting to try again);
 * - `connected`: live, over `transport`;
 * - `reconnecting`: it was connected and lost it; `retryInMs` when waiting, `error` when the cause is known;
 * - `offline`: not trying: the browser is offline (`network`, it resumes by itself), `close()` was called
 *   (`closed`), or an error that retrying cannot fix (`error`: a refused token, a room not granted).
 */
export type RoomStatus =
  | { state: "connecting"; transport: TransportKind; retryInMs?: number; error?: RoomError }
  | { state: "connected"; transport: TransportKind }
  | { state: "reconnecting"; transport: TransportKind; attempt: number; retryInMs?: number; error?: RoomError }
  | { state: "offline"; reason: "network" | "closed" | "error"; error?: RoomError };

/** `sync`: the whole list, on every (re)connect; `join` / `leave`: one user came or went. */
export type PresenceEvent =
  | { action: "sync"; members: PresenceMember[] }
  | { action: "join" | "leave"; user: UserRef; members: PresenceMember[] };

export interface TypingEvent {
  user: UserRef;
}

export interface ReadEvent {
  user: UserRef;
  seq: number;
}

export interface RoomEvents {
  /** Every event of the room's log (chat messages, and server events such as `ticket_assigned`), once each, in seq order. */
  message: Envelope;
  presence: PresenceEvent;
  /** Someone else is typing (not sent on long-poll). */
  typing: TypingEvent;
  /** Someone (you included) has read up to `seq` (not sent on long-poll). */
  read: ReadEvent;
  status: RoomStatus;
  /** Errors that are not a send's own (those reject `send()`): server error frames, failed read receipts, and the error that took the room offline. */
  error: RoomError;
}
