/**
 * The Pusher Channels protocol (version 7) as this service speaks it, and
 * the one mapping between a Pusher event and a room event. Both halves of
 * the bridge import this: the HTTP API (Pusher-triggered events enter a
 * room's log) and the Pusher WebSocket fan-out (room events reach pusher-js).
 * See docs/pusher.md.
 */
import type { EventData } from "./envelope";

/** The only protocol version served (`/app/:key?protocol=7`). */
export const PUSHER_PROTOCOL_VERSION = 7;
/** Pusher's limit on one event's `data`, in bytes. */
export const PUSHER_MAX_EVENT_BYTES = 10_240;
/** Channels one `POST /apps/:id/events` may name. */
export const PUSHER_MAX_TRIGGER_CHANNELS = 100;
/** Events one `POST /apps/:id/batch_events` may carry. */
export const PUSHER_MAX_BATCH_EVENTS = 10;

export type PusherChannelKind = "public" | "private" | "presence";

/** A channel is the room of the same name; its prefix says who may join. */
export function pusherChannelKind(channel: string): PusherChannelKind {
  if (channel.startsWith("presence-")) return "presence";
  if (channel.startsWith("private-")) return "private";
  return "public";
}

/**
 * End-to-end encrypted channels: authorized as private channels, with a
 * per-channel `shared_secret` in the auth answer; the service only ever
 * holds their payloads as ciphertext (`{"nonce","ciphertext"}`).
 */
export function isEncryptedChannel(channel: string): boolean {
  return channel.startsWith("private-encrypted-");
}

/** Cache channels: a new subscriber gets the channel's last event at once, or `pusher:cache_miss`. */
export function isCacheChannel(channel: string): boolean {
  return /^(?:cache-|private-cache-|presence-cache-|private-encrypted-cache-)/.test(channel);
}

/**
 * The server-to-user channel of a signed-in user (`sendToUser` triggers to
 * it). Its room is the user's index of connections: which hub shards hold
 * a socket signed in as that user.
 */
export const USER_CHANNEL_PREFIX = "#server-to-user-";

export function userChannel(userId: string): string {
  return `${USER_CHANNEL_PREFIX}${userId}`;
}

/** The user id of a server-to-user channel name, or undefined for any other channel. */
export function userIdOfChannel(channel: string): string | undefined {
  return channel.startsWith(USER_CHANNEL_PREFIX) ? channel.slice(USER_CHANNEL_PREFIX.length) : undefined;
}

/**
 * Key under which a Pusher payload that is not a JSON object is kept in a
 * room event's `data` (room events always carry an object).
 */
export const RAW_PUSHER_DATA_KEY = "pusherData";

/**
 * Pusher → room: a payload string that is a JSON object becomes the event's
 * data as is (what Laravel and the SDKs send); anything else is kept
 * verbatim as `{"pusherData": "<string>"}`.
 */
export function pusherDataToEventData(data: string): EventData {
  try {
    const parsed: unknown = JSON.parse(data);
    if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) return parsed as EventData;
  } catch {
    // Not JSON: kept as the raw string below.
  }
  return { [RAW_PUSHER_DATA_KEY]: data };
}

/**
 * Room → Pusher: the `data` string of the Pusher frame. The inverse of
 * `pusherDataToEventData`, so a Pusher-triggered string comes back exactly.
 */
export function eventDataToPusherData(data: EventData): string {
  const keys = Object.keys(data);
  const raw = data[RAW_PUSHER_DATA_KEY];
  if (keys.length === 1 && typeof raw === "string") return raw;
  return JSON.stringify(data);
}

/** What the Pusher HTTP API hands a room: one event, maybe excluding the socket that caused it. */
export interface PusherTrigger {
  /** The Pusher event name (becomes the room event's `event`). */
  event: string;
  /** The payload string exactly as the SDK sent it. */
  data: string;
  /** `socket_id` of the trigger: that Pusher connection does not get the event live. */
  socketId?: string;
}
