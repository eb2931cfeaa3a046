/**
 * The Pusher Channels WebSocket protocol (version 7) on the wire: the frames
 * a client may send (valibot schemas), the frames the server sends (built
 * only here), close/error codes and the limits of one connection. What a
 * frame means for rooms is decided elsewhere (objects/PusherHub.ts); see
 * docs/pusher.md.
 *
 * Server frames follow Pusher: `data` is a JSON *string* in
 * connection_established, subscription_succeeded, member_added/removed and
 * channel events; it is an object in pusher:error and
 * pusher:subscription_error (pusher-js reads both forms).
 */
import * as v from "valibot";
import type { Envelope } from "./envelope";
import { eventDataToPusherData, PUSHER_MAX_EVENT_BYTES, USER_CHANNEL_PREFIX } from "./pusher";

/** Seconds of silence after which the client should ping (and the server will). */
export const PUSHER_ACTIVITY_TIMEOUT_SECONDS = 120;
/** How long a pinged connection has to answer before it is closed with 4201. */
export const PUSHER_PONG_TIMEOUT_MS = 30_000;
/** Channels one connection may be subscribed to at once. */
export const PUSHER_MAX_CHANNELS_PER_SOCKET = 100;
/** Client events one connection may send per second; more are refused with 4301. */
export const PUSHER_CLIENT_EVENTS_PER_SECOND = 10;
/** Bytes of a presence member's `user_info` (JSON). */
export const PUSHER_MAX_USER_INFO_BYTES = 1024;
/** Characters of a presence `user_id`. */
export const PUSHER_MAX_USER_ID_LENGTH = 128;
/** Characters of a client event's name (Pusher's limit on event names). */
export const PUSHER_MAX_CLIENT_EVENT_NAME = 200;
/** Characters of one client frame, checked before parsing: a 10 KB event with its JSON around it. */
export const PUSHER_MAX_FRAME_CHARS = 2 * PUSHER_MAX_EVENT_BYTES + 4096;

/**
 * `pusher:error` codes, and the close codes of the same number. pusher-js
 * reacts to the close code: 4000–4099 refused (no reconnect), 4100–4199
 * back off then reconnect, 4200–4299 reconnect at once.
 */
export const PusherCode = {
  /** The app key in the URL is not ours. */
  APP_KEY: 4001,
  /** The `protocol` query is not 7. */
  PROTOCOL: 4007,
  /** Unauthorized (a subscription without a valid signature). */
  UNAUTHORIZED: 4009,
  /** This hub shard is full; the client backs off and lands on another. */
  OVER_CAPACITY: 4100,
  /** Generic "reconnect now" (lost frames, server restart). */
  RECONNECT: 4200,
  /** The client did not answer the server's ping. */
  PONG_TIMEOUT: 4201,
  /** Client events over the rate limit (the connection stays open). */
  CLIENT_EVENT_RATE: 4301,
} as const;

/**
 * Channel names a connection may subscribe to: Pusher's own, which are the
 * room ids without `:`. That keeps the rooms whose names carry a `:`, the
 * native API's personal inboxes (`user:<sub>`) and legacy sessions
 * (`chat-session:N`), out of reach of public subscriptions, which need no
 * token: they stay readable only with a JWT that grants them.
 */
export const PUSHER_CHANNEL_PATTERN = /^[A-Za-z0-9_\-=@,.;]{1,164}$/;

export const pusherChannelSchema = v.pipe(
  v.string("channel must be a string"),
  v.regex(PUSHER_CHANNEL_PATTERN, "channel names match ^[A-Za-z0-9_\\-=@,.;]{1,164}$ (Pusher's; rooms with a colon are not channels)"),
);

/**
 * A user id as `pusher:signin`'s `user_data` names it: what a server SDK's
 * `authenticateUser` accepts (a non-empty string), capped like a presence
 * user_id, without control characters (it becomes a channel name).
 */
export const pusherUserIdSchema = v.pipe(
  v.string("user_data.id must be a string"),
  v.minLength(1, "user_data.id must not be empty"),
  v.maxLength(PUSHER_MAX_USER_ID_LENGTH, `user_data.id is at most ${PUSHER_MAX_USER_ID_LENGTH} characters`),
  v.regex(/^[^\u0000-\u001f\u007f]*$/, "user_data.id must not contain control characters"),
);

/** `#server-to-user-<id>`: pusher-js subscribes to it after `pusher:signin_success`. */
const userChannelSchema = v.pipe(v.string(), v.startsWith(USER_CHANNEL_PREFIX), v.check((channel) => v.is(pusherUserIdSchema, channel.slice(USER_CHANNEL_PREFIX.length)), "not a user id"));

/** Channels a connection may name in subscribe / unsubscribe: Pusher's own, and its own server-to-user channel. */
const subscribableChannelSchema = v.union([pusherChannelSchema, userChannelSchema], "channel names match ^[A-Za-z0-9_\\-=@,.;]{1,164}$ (Pusher's; rooms with a colon are not channels), or #server-to-user-<id>");

/** `data` of `pusher:subscribe` (some clients send it as a JSON string; it is parsed first). */
export const pusherSubscribeDataSchema = v.object({
  channel: subscribableChannelSchema,
  auth: v.optional(v.pipe(v.string(), v.maxLength(512))),
  channel_data: v.optional(v.pipe(v.string(), v.maxLength(2 * PUSHER_MAX_USER_INFO_BYTES + 512))),
});
export type PusherSubscribeData = v.InferOutput<typeof pusherSubscribeDataSchema>;

export const pusherUnsubscribeDataSchema = v.object({ channel: subscribableChannelSchema });

/** Characters of `pusher:signin`'s `user_data` (a JSON text: id, user_info, watchlist). */
export const PUSHER_MAX_USER_DATA_CHARS = 4096;

/** `data` of `pusher:signin`: the signature and the user_data it covers, as the app's user-auth endpoint returned them. */
export const pusherSigninDataSchema = v.object({
  auth: v.pipe(v.string("auth must be a string"), v.maxLength(512)),
  user_data: v.pipe(v.string("user_data must be a JSON string"), v.maxLength(PUSHER_MAX_USER_DATA_CHARS, `user_data is at most ${PUSHER_MAX_USER_DATA_CHARS} characters`)),
});

/** What `user_data` must hold: an `id` (the rest, user_info and watchlist, is the app's). */
export const pusherUserDataSchema = v.looseObject({ id: pusherUserIdSchema });

/** A client event: `client-…` on a channel, with any JSON `data`. */
export const pusherClientEventSchema = v.object({
  event: v.pipe(v.string(), v.startsWith("client-"), v.maxLength(PUSHER_MAX_CLIENT_EVENT_NAME, `event names are at most ${PUSHER_MAX_CLIENT_EVENT_NAME} characters`)),
  channel: pusherChannelSchema,
  data: v.optional(v.unknown()),
});

/**
 * The `channel_data` a presence subscription is signed with:
 * `{"user_id": "…", "user_info": {…}}`. Pusher's server SDKs may give
 * `user_id` as a number (Laravel's integer ids); it is used as a string.
 */
export const pusherChannelDataSchema = v.object({
  user_id: v.pipe(
    v.union([v.pipe(v.string(), v.minLength(1)), v.pipe(v.number(), v.safeInteger())], "user_id must be a non-empty string or an integer"),
    v.transform(String),
    v.maxLength(PUSHER_MAX_USER_ID_LENGTH, `user_id is at most ${PUSHER_MAX_USER_ID_LENGTH} characters`),
  ),
  user_info: v.optional(v.unknown()),
});

/** A new socket_id: two random integers, `1234.5678`, as Pusher forms them. */
export function newSocketId(): string {
  const [a, b] = crypto.getRandomValues(new Uint32Array(2));
  return `${a}.${b}`;
}

// ---- server frames ----

/** What pusher-js sends as its ping, byte for byte (answered by the runtime without waking the hub). */
export const PUSHER_JS_PING = '{"event":"pusher:ping","data":{}}';
export const PONG_FRAME = '{"event":"pusher:pong","data":"{}"}';
export const PING_FRAME = '{"event":"pusher:ping","data":"{}"}';

export function connectionEstablishedFrame(socketId: string): string {
  return JSON.stringify({
    event: "pusher:connection_established",
    data: JSON.stringify({ socket_id: socketId, activity_timeout: PUSHER_ACTIVITY_TIMEOUT_SECONDS }),
  });
}

/** A protocol error; `code` null for a malformed frame that does not end anything. */
export function errorFrame(code: number | null, message: string, channel?: string): string {
  return JSON.stringify({ event: "pusher:error", ...(channel === undefined ? {} : { channel }), data: { code, message } });
}

/**
 * What pusher-js emits as `pusher:subscription_error` on the channel:
 * `{type, error, status}` (an HTTP-like status, as its own authorizer
 * reports). An authorization failure also carries Pusher's code 4009.
 */
export function subscriptionErrorFrame(channel: string, type: "AuthError" | "LimitReached" | "InvalidChannel" | "ServerError", error: string, status: number): string {
  const data = type === "AuthError" ? { type, error, status, code: PusherCode.UNAUTHORIZED } : { type, error, status };
  return JSON.stringify({ event: "pusher:subscription_error", channel, data });
}

/** The answer to a valid `pusher:signin`: `user_data` echoed, as pusher-js reads it. */
export function signinSuccessFrame(userData: string): string {
  return JSON.stringify({ event: "pusher:signin_success", data: JSON.stringify({ user_data: userData }) });
}

/** A cache channel with nothing cached: sent right after subscription_succeeded. */
export function cacheMissFrame(channel: string): string {
  return JSON.stringify({ event: "pusher:cache_miss", channel });
}

/** How many connections are on a channel (pusher-js: `channel.subscriptionCount`, `pusher:subscription_count`). */
export function subscriptionCountFrame(channel: string, count: number): string {
  return JSON.stringify({ event: "pusher_internal:subscription_count", channel, data: JSON.stringify({ subscription_count: count }) });
}

/** Success for a public or private channel. */
export function subscriptionSucceededFrame(channel: string): string {
  return JSON.stringify({ event: "pusher_internal:subscription_succeeded", channel, data: "{}" });
}

/** Success for a presence channel: every member, `hash` keyed by user id. `infos` are JSON texts. */
export function presenceSucceededFrame(channel: string, members: { id: string; infoJson: string }[]): string {
  const hash = members.map((m) => `${JSON.stringify(m.id)}:${m.infoJson}`).join(",");
  const data = `{"presence":{"ids":${JSON.stringify(members.map((m) => m.id))},"hash":{${hash}},"count":${members.length}}}`;
  return JSON.stringify({ event: "pusher_internal:subscription_succeeded", channel, data });
}

export function memberAddedFrame(channel: string, userId: string, infoJson: string): string {
  return JSON.stringify({ event: "pusher_internal:member_added", channel, data: `{"user_id":${JSON.stringify(userId)},"user_info":${infoJson}}` });
}

export function memberRemovedFrame(channel: string, userId: string): string {
  return JSON.stringify({ event: "pusher_internal:member_removed", channel, data: JSON.stringify({ user_id: userId }) });
}

/** A channel event: `data` is the payload string; `user_id` names the sender when there is one. */
export function channelEventFrame(channel: string, event: string, data: string, userId?: string): string {
  return JSON.stringify({ event, channel, data, ...(userId === undefined ? {} : { user_id: userId }) });
}

/** A client event relayed as sent (its `data` keeps its JSON type), with `user_id` on presence channels. */
export function clientEventFrame(channel: string, event: string, data: unknown, userId?: string): string {
  return JSON.stringify({ event, channel, data, ...(userId === undefined ? {} : { user_id: userId }) });
}

/** UTF-8 size of a client event's data as Pusher counts it (a string as is, anything else as JSON). */
export function clientEventDataBytes(data: unknown): number {
  const text = typeof data === "string" ? data : (JSON.stringify(data) ?? "");
  return new TextEncoder().encode(text).byteLength;
}

/**
 * A room event as a Pusher channel event: the envelope's `event` and
 * `data` (mapped by `eventDataToPusherData`), and `user_id` = `from.id`
 * when the event names a sender.
 */
export function roomEventFrame(envelope: Envelope): string {
  return channelEventFrame(envelope.room, envelope.event, eventDataToPusherData(envelope.data), envelope.from?.id);
}
