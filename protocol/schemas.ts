/**
 * valibot schemas for everything a client or trigger sends us. The Worker
 * validates HTTP bodies and queries with them; the room object validates
 * WebSocket frames with them. Size limits that depend on configuration
 * (MAX_MESSAGE_BYTES) are checked where the configuration is known.
 */
import * as v from "valibot";
import { EVENT_NAME_PATTERN, ROOM_ID_PATTERN } from "./limits";
import { isNotificationUrl, PUSH_URGENCIES } from "./push";

export const roomIdSchema = v.pipe(v.string(), v.regex(ROOM_ID_PATTERN, "room ids match ^[A-Za-z0-9_\\-=@,.;:]{1,164}$"));

/** A JSON object (not an array, not null): what every event's `data` is. */
export const dataObjectSchema = v.custom<Record<string, unknown>>(
  (value) => typeof value === "object" && value !== null && !Array.isArray(value),
  "must be a JSON object",
);

/** Chat messages sent by users carry a non-empty `data.text`. */
export const chatDataSchema = v.pipe(
  dataObjectSchema,
  v.check((data) => typeof data.text === "string" && data.text.length > 0, "must have a non-empty string `text`"),
);

export const clientIdSchema = v.pipe(v.string(), v.minLength(1), v.maxLength(128));

export const userRefSchema = v.object({
  id: v.pipe(v.string(), v.minLength(1), v.maxLength(128)),
  name: v.pipe(v.string(), v.maxLength(128)),
});

/** `POST /rooms/:room/messages` */
export const sendBodySchema = v.object({
  data: chatDataSchema,
  clientId: v.optional(clientIdSchema),
});
export type SendBody = v.InferOutput<typeof sendBodySchema>;

/** `push` of notify: false for none, or the wording of the notification. */
export const pushOptionSchema = v.union([
  v.literal(false),
  v.object({
    title: v.optional(v.pipe(v.string(), v.maxLength(1000))),
    body: v.optional(v.pipe(v.string(), v.maxLength(4000))),
    url: v.optional(v.pipe(v.string(), v.maxLength(2000), v.check(isNotificationUrl, "must be a path on the page's origin (/…) or an http(s) URL"))),
    urgency: v.optional(v.picklist(PUSH_URGENCIES, "must be very-low, low, normal or high")),
  }),
]);
export type PushOption = v.InferOutput<typeof pushOptionSchema>;

const notifyFields = {
  event: v.pipe(v.string(), v.regex(EVENT_NAME_PATTERN, "event names match ^[A-Za-z0-9_\\-.:]{1,64}$")),
  data: dataObjectSchema,
  from: v.optional(userRefSchema),
  idempotencyKey: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(128))),
  push: v.optional(pushOptionSchema),
};

/** A notify that uses the chat event name must look like a chat message: `data.text`. */
const chatEventHasText = <T extends { event: string; data: Record<string, unknown> }>(body: T) =>
  body.event !== "message" || (typeof body.data.text === "string" && body.data.text.length > 0);
const CHAT_EVENT_TEXT = "data.text: events named \"message\" are chat messages and need a non-empty text";

/** `POST /rooms/:room/notify` */
export const notifyBodySchema = v.pipe(v.object(notifyFields), v.check(chatEventHasText, CHAT_EVENT_TEXT));
export type NotifyBody = v.InferOutput<typeof notifyBodySchema>;

/** Most events one `POST /rooms/:room/notify` with `events` may carry. */
export const MAX_NOTIFY_EVENTS = 100;

/**
 * `POST /rooms/:room/notify` with `{"events":[…]}`: 1 to 100 events into
 * one room, all accepted or none. An item that fails is named by its index
 * (`events.3.data: …`).
 */
export const notifyEventsBodySchema = v.object({
  events: v.pipe(
    v.array(notifyBodySchema),
    v.minLength(1, "must hold at least one event"),
    v.maxLength(MAX_NOTIFY_EVENTS, `at most ${MAX_NOTIFY_EVENTS} events per request`),
  ),
});
export type NotifyEventsBody = v.InferOutput<typeof notifyEventsBodySchema>;

/** `POST /notify`: one event to many rooms. */
export const batchNotifyBodySchema = v.pipe(
  v.object({
    // Each id is checked by the Worker, so a bad one is `invalid_room` like everywhere else.
    rooms: v.pipe(v.array(v.string()), v.minLength(1), v.maxLength(100), v.check((rooms) => new Set(rooms).size === rooms.length, "must not repeat a room")),
    ...notifyFields,
  }),
  v.check(chatEventHasText, CHAT_EVENT_TEXT),
);

/** `POST /rooms/:room/read` */
export const readBodySchema = v.object({ seq: v.pipe(v.number(), v.integer(), v.minValue(0)) });

/** Frames a WebSocket client may send. */
export const clientFrameSchema = v.variant("type", [
  v.object({ type: v.literal("send"), data: chatDataSchema, clientId: v.optional(clientIdSchema) }),
  v.object({ type: v.literal("typing") }),
  v.object({ type: v.literal("read"), seq: v.pipe(v.number(), v.integer(), v.minValue(0)) }),
  v.object({ type: v.literal("ping") }),
  // Flow control (docs/api.md): "I have processed every event up to seq". Opts the socket in; never stored.
  v.object({ type: v.literal("ack"), seq: v.pipe(v.number(), v.integer(), v.minValue(0)) }),
]);
export type ClientFrame = v.InferOutput<typeof clientFrameSchema>;

/** A query parameter that must be a non-negative decimal integer when present. */
const seqParam = v.optional(
  v.pipe(v.string(), v.regex(/^\d{1,15}$/, "must be a non-negative integer"), v.transform(Number)),
);

/** `GET /rooms/:room/messages`, `/events` and `/ws` queries. */
export const roomQuerySchema = v.object({
  after: seqParam,
  before: v.optional(v.pipe(v.string(), v.regex(/^\d{1,15}$/, "must be a non-negative integer"), v.transform(Number), v.minValue(1, "must be at least 1"))),
  wait: v.optional(v.pipe(v.string(), v.regex(/^\d{1,6}(\.\d+)?$/, "must be a non-negative number of seconds"), v.transform(Number))),
  // The upper bound is MAX_PAGE_LIMIT, checked where the configuration is known.
  limit: v.optional(v.pipe(v.string(), v.regex(/^\d{1,6}$/, "must be a positive integer"), v.transform(Number), v.minValue(1, "must be at least 1"))),
  token: v.optional(v.string()),
  // WebSocket only: `batch=1` opts in to coalesced `messages` and `acks` frames (SPEC §4).
  batch: v.optional(v.picklist(["0", "1"], "must be 0 or 1")),
});
export type RoomQuery = v.InferOutput<typeof roomQuerySchema>;

/** Names the first failing field of a valibot result, for error messages. */
export function describeIssues(issues: readonly v.BaseIssue<unknown>[]): string {
  const issue = issues[0];
  if (!issue) return "invalid";
  const path = v.getDotPath(issue);
  return path ? `${path}: ${issue.message}` : issue.message;
}
