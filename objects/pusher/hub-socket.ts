/**
 * One Pusher connection held by a PusherHub. The wrapper is rebuilt once per
 * wake from the socket's attachment (its socket_id and activity marks) and
 * the hub's subscription rows; see HubSockets.
 *
 * The attachment stays tiny on purpose: the runtime caps it at 2 KiB, and a
 * socket may be on 100 channels with a presence member each, so the
 * channel list lives in the hub's SQLite instead.
 */
import { PUSHER_CLIENT_EVENTS_PER_SECOND, PING_FRAME } from "../../protocol/pusher-socket";
import type { PusherMember } from "./hub-api";

/** What a socket carries through hibernation. */
export interface HubSocketAttachment {
  socketId: string;
  /** The user this connection signed in as (`pusher:signin`), at most 128 characters. */
  userId?: string;
  /** When the client was last heard from (coarse: refreshed at most every SEEN_PRECISION_MS). */
  seenAt: number;
  /** When the server pinged it and is waiting for an answer. */
  pingedAt?: number;
}

/** `seenAt` is rewritten into the attachment at most this often (an attachment write per frame buys nothing). */
const SEEN_PRECISION_MS = 30_000;

export interface ChannelSubscription {
  /** The presence member this socket is on the channel as. */
  member?: PusherMember;
  /** false until the room's subscription_succeeded has reached the socket. */
  live: boolean;
  /** The room call that subscribed it; an unsubscribe waits for it, so the room never sees them reversed. */
  pending?: Promise<void>;
}

export class HubSocket {
  readonly channels = new Map<string, ChannelSubscription>();
  lastSeen: number;
  #attachment: HubSocketAttachment;
  /** Client events in the current one-second window. Memory only: a socket idle long enough to hibernate has a fresh window anyway. */
  #windowStart = 0;
  #windowCount = 0;

  constructor(
    readonly ws: WebSocket,
    attachment: HubSocketAttachment,
  ) {
    this.#attachment = attachment;
    this.lastSeen = attachment.seenAt;
  }

  get socketId(): string {
    return this.#attachment.socketId;
  }

  get pingedAt(): number | undefined {
    return this.#attachment.pingedAt;
  }

  get userId(): string | undefined {
    return this.#attachment.userId;
  }

  /** Remembers the signed-in user through hibernation. */
  signIn(userId: string): void {
    this.#save({ ...this.#attachment, userId });
  }

  /** Sends a frame; false if the socket is gone (its close handler cleans up). */
  send(frame: string): boolean {
    try {
      this.ws.send(frame);
      return true;
    } catch {
      return false;
    }
  }

  close(code: number, reason: string): void {
    try {
      this.ws.close(code, reason);
    } catch {
      // already closed
    }
  }

  /** The client said something: it is alive. */
  heard(now: number): void {
    this.lastSeen = now;
    if (this.#attachment.pingedAt !== undefined) {
      const { pingedAt: _answered, ...rest } = this.#attachment;
      this.#save({ ...rest, seenAt: now });
    } else if (now - this.#attachment.seenAt >= SEEN_PRECISION_MS) {
      this.#save({ ...this.#attachment, seenAt: now });
    }
  }

  /** Asks an idle client whether it is still there. */
  ping(now: number): void {
    this.#save({ ...this.#attachment, seenAt: this.lastSeen, pingedAt: now });
    this.send(PING_FRAME);
  }

  /** An answer the runtime gave for us (auto-response) counts as hearing from the client. */
  answered(at: number): void {
    if (at > this.lastSeen) this.heard(at);
  }

  /** Takes one client event from this second's allowance; false when it is used up. */
  takeClientEvent(now: number): boolean {
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now;
      this.#windowCount = 0;
    }
    if (this.#windowCount >= PUSHER_CLIENT_EVENTS_PER_SECOND) return false;
    this.#windowCount++;
    return true;
  }

  #save(attachment: HubSocketAttachment): void {
    this.#attachment = attachment;
    this.ws.serializeAttachment(attachment);
  }
}
