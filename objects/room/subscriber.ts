/**
 * The one interface every transport implements. A subscriber is "something
 * that wants the room's events after seq N": a WebSocket, an SSE stream, a
 * long-poll request, or a PusherHub shard's connections on this channel
 * (objects/room/pusher-subscriber.ts). The Hub fans out to all of
 * them the same way; each kind only decides how to put bytes on its wire.
 */
import type { UserRef } from "../../protocol/envelope";
import type { EncodedSignal } from "./encoded-signal";
import type { EventRun } from "./event-run";

export type TransportKind = "websocket" | "sse" | "longpoll" | "pusher";

export interface Subscriber {
  readonly kind: TransportKind;
  readonly user: UserRef;
  /** Highest seq this subscriber has been given. The Hub never gives it one twice. */
  cursor: number;
  /**
   * Puts several events in one frame (a `batch=1` WebSocket): a replay
   * hands it frame-sized runs. Others are replayed one event at a time, so
   * a replay that must wait for its client (`drained`) stops right there.
   */
  readonly coalesces?: boolean;
  /** Counts toward presence (a held long-poll does; see Presence). */
  readonly countsAsConnection: boolean;
  /**
   * Puts consecutive events on the wire, all past the cursor, in as few
   * writes as the transport allows (EventRun). Returns false when the
   * subscriber is done (a long-poll that answered, a stream that broke) and
   * must be removed.
   */
  deliver(run: EventRun): boolean;
  /** Puts an ephemeral signal on the wire (presence, typing, read). */
  signal(signal: EncodedSignal): void;
  /** Ends the subscription from the server side. */
  close(code: number, reason: string): void;
  /**
   * For transports that can tell when their client has read what was
   * written (SSE): while a replay is catching up, a promise that resolves
   * once the client has taken most of it, or undefined when there is room
   * for more now. The Hub then replays at the client's pace, from storage,
   * instead of queueing the whole backlog in memory.
   */
  drained?(): Promise<void> | undefined;
  /** True once the subscriber has ended (checked after waiting on `drained`). */
  readonly closed?: boolean;
}
