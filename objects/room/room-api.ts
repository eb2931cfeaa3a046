/**
 * What the Worker and the room object say to each other. JSON operations are
 * RPC calls on the ChatRoom stub; streaming ones (WebSocket, SSE, long-poll)
 * are fetches, with the already-authenticated caller in ROOM_CONTEXT_HEADER.
 * The room object is reachable only through the Worker, which sets it.
 */
import type { UserRef } from "../../protocol/envelope";
import type { ErrorInfo } from "../../protocol/errors";

export const ROOM_CONTEXT_HEADER = "x-room-context";

/** An authenticated user acting in a room. */
export interface Caller {
  room: string;
  user: UserRef;
  role?: string;
}

/** A streaming or read request: WebSocket, SSE or GET messages. */
export interface StreamCall extends Caller {
  after?: number;
  before?: number;
  /** Milliseconds to hold a long-poll (already clamped). */
  waitMs?: number;
  limit?: number;
  /** WebSocket: the client takes coalesced frames (`batch=1`). */
  batch?: boolean;
  /** Legacy API: also answer each event's sender role and the caller's last-read seq. */
  withSenderRoles?: boolean;
}

export type RoomResult<T> = { ok: true; value: T } | { ok: false; error: ErrorInfo };

export const ok = <T>(value: T): RoomResult<T> => ({ ok: true, value });
export const fail = (code: ErrorInfo["code"], message: string, retryAfter?: number): { ok: false; error: ErrorInfo } => ({
  ok: false,
  error: retryAfter === undefined ? { code, message } : { code, message, retryAfter },
});
