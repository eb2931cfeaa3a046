/**
 * valibot schemas of the Pusher HTTP API (SPEC §8) as the official server
 * SDKs call it: the signed query, the bodies of `POST /apps/:id/events` and
 * `POST /apps/:id/batch_events`, and the `info` lists of the channel routes.
 * Limits that need the raw request (the 10 KB `data` cap, room ids) are
 * checked by the Worker, which then answers 413 / `invalid_room`.
 */
import * as v from "valibot";
import { PUSHER_MAX_BATCH_EVENTS, PUSHER_MAX_TRIGGER_CHANNELS, pusherDataToEventData } from "./pusher";

/** Pusher's limit on an event name (its SDKs refuse longer ones). */
export const PUSHER_MAX_EVENT_NAME_LENGTH = 200;
/** The only signature scheme Pusher defines. */
export const PUSHER_AUTH_VERSION = "1.0";

/** What `auth_*` and `body_md5` must look like; anything else is a 401. */
export const pusherAuthQuerySchema = v.object({
  auth_key: v.pipe(v.string(), v.minLength(1), v.maxLength(256)),
  auth_timestamp: v.pipe(v.string(), v.regex(/^\d{1,12}$/, "must be whole seconds since 1970"), v.transform(Number)),
  auth_version: v.string(),
  auth_signature: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/i, "must be a hex HMAC-SHA256")),
  body_md5: v.optional(v.pipe(v.string(), v.regex(/^[0-9a-f]{32}$/i, "must be a hex MD5"))),
});
export type PusherAuthQuery = v.InferOutput<typeof pusherAuthQuerySchema>;

/** A connection id as pusher-js gets it in `pusher:connection_established`. */
export const pusherSocketIdSchema = v.pipe(v.string(), v.maxLength(64), v.regex(/^\d+\.\d+$/, "must look like 1234.5678 (a Pusher socket_id)"));

/**
 * Event names: Pusher allows any name up to 200 characters (Laravel sends
 * class names such as `App\Events\OrderShipped`), except the protocol's own.
 */
export const pusherEventNameSchema = v.pipe(
  v.string(),
  v.minLength(1, "must not be empty"),
  v.maxLength(PUSHER_MAX_EVENT_NAME_LENGTH, `must be at most ${PUSHER_MAX_EVENT_NAME_LENGTH} characters`),
  v.regex(/^[^\u0000-\u001f\u007f]*$/, "must not contain control characters"),
  v.check((name) => !name.startsWith("pusher:") && !name.startsWith("pusher_internal:"), "pusher: and pusher_internal: names are reserved for the protocol"),
);

/** The channel attributes `info` may ask for. */
export const PUSHER_INFO_ATTRIBUTES = ["user_count", "subscription_count"] as const;
export type PusherInfoAttribute = (typeof PUSHER_INFO_ATTRIBUTES)[number];

/** `info=user_count,subscription_count` → the distinct attributes, each one known. */
export const pusherInfoSchema = v.pipe(
  v.string(),
  v.maxLength(200),
  v.transform((info) => [...new Set(info.split(",").map((part) => part.trim()).filter(Boolean))]),
  v.check(
    (parts) => parts.every((part) => (PUSHER_INFO_ATTRIBUTES as readonly string[]).includes(part)),
    `attributes are ${PUSHER_INFO_ATTRIBUTES.join(", ")}`,
  ),
  v.transform((parts) => parts as PusherInfoAttribute[]),
);

/** An event named like the room's chat messages must look like one (as for notify). */
const chatNameHasText = <T extends { name: string; data: string }>(event: T) => {
  if (event.name !== "message") return true;
  const text = pusherDataToEventData(event.data).text;
  return typeof text === "string" && text.length > 0;
};
const CHAT_NAME_TEXT = "data: events named \"message\" are chat messages: data must be a JSON object with a non-empty text";

const eventFields = {
  name: pusherEventNameSchema,
  // The 10 KB cap is checked by the Worker (413, as Pusher answers).
  data: v.string("must be a string (the SDKs JSON-encode objects)"),
  socket_id: v.optional(pusherSocketIdSchema),
  info: v.optional(pusherInfoSchema),
};

/** `POST /apps/:id/events`: `channels` (1–100) or `channel`, not both. */
export const pusherEventBodySchema = v.pipe(
  v.object({
    ...eventFields,
    channels: v.optional(v.pipe(
      v.array(v.string()),
      v.minLength(1, "must name at least one channel"),
      v.maxLength(PUSHER_MAX_TRIGGER_CHANNELS, `at most ${PUSHER_MAX_TRIGGER_CHANNELS} channels per event`),
    )),
    channel: v.optional(v.string()),
  }),
  v.check((body) => (body.channels === undefined) !== (body.channel === undefined), "channels: give either channels (an array) or channel, not both"),
  v.check(chatNameHasText, CHAT_NAME_TEXT),
);
export type PusherEventBody = v.InferOutput<typeof pusherEventBodySchema>;

/** One event of `POST /apps/:id/batch_events`. */
export const pusherBatchEventSchema = v.pipe(v.object({ ...eventFields, channel: v.string() }), v.check(chatNameHasText, CHAT_NAME_TEXT));
export type PusherBatchEvent = v.InferOutput<typeof pusherBatchEventSchema>;

/** `POST /apps/:id/batch_events`: 1–10 events. */
export const pusherBatchBodySchema = v.object({
  batch: v.pipe(
    v.array(pusherBatchEventSchema),
    v.minLength(1, "must hold at least one event"),
    v.maxLength(PUSHER_MAX_BATCH_EVENTS, `at most ${PUSHER_MAX_BATCH_EVENTS} events per batch`),
  ),
});

/** `GET /apps/:id/channels` */
export const pusherChannelsQuerySchema = v.object({
  filter_by_prefix: v.optional(v.pipe(v.string(), v.maxLength(200))),
  info: v.optional(pusherInfoSchema),
});

/** `GET /apps/:id/channels/:name` */
export const pusherChannelQuerySchema = v.object({
  info: v.optional(pusherInfoSchema),
});
