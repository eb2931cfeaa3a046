/**
 * The notification a push carries (SPEC §7): `{title, body, url, room, seq,
 * event}` as JSON, worded from the event (or from notify's `push` option)
 * and cut to fit: title ≤ 100 and body ≤ 200 characters, the whole JSON ≤
 * 1000 UTF-8 bytes, each cut marked with an ellipsis.
 */
import { CHAT_MESSAGE_EVENT, type Envelope } from "../../protocol/envelope";
import { PUSH_LIMITS, type PushNotificationPayload, type PushUrgency } from "../../protocol/push";
import type { PushOption } from "../../protocol/schemas";

const ELLIPSIS = "…";

/** What a click on the notification opens when nothing else is given: the demo page on the room. */
export function defaultNotificationUrl(room: string): string {
  return `/?room=${encodeURIComponent(room)}`;
}

/**
 * `text` cut to at most `max` UTF-16 code units, the ellipsis included,
 * never splitting a surrogate pair. Unchanged when it fits.
 */
export function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  if (max <= 0) return "";
  let end = max - ELLIPSIS.length;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--; // a high surrogate whose partner would be cut off
  return text.slice(0, Math.max(0, end)).trimEnd() + ELLIPSIS;
}

const utf8Length = (text: string) => new TextEncoder().encode(text).byteLength;

const stringField = (data: Record<string, unknown>, key: string) => {
  const value = data[key];
  return typeof value === "string" ? value : undefined;
};

/** Default wording: a chat message is "<sender> in <room>" / its text; a server event uses its data. */
export function notificationFor(envelope: Envelope, option?: Exclude<PushOption, false>): PushNotificationPayload {
  const { room, seq, event, data, from } = envelope;
  let title: string;
  let body: string;
  if (event === CHAT_MESSAGE_EVENT && from) {
    const sender = from.name || from.id;
    title = room.startsWith("user:") ? sender : `${sender} in ${room}`;
    body = stringField(data, "text") ?? "";
  } else {
    title = stringField(data, "title") ?? (from ? from.name || from.id : event);
    body = stringField(data, "text") ?? stringField(data, "body") ?? stringField(data, "message") ?? "";
  }
  return {
    title: option?.title ?? title,
    body: option?.body ?? body,
    url: option?.url ?? defaultNotificationUrl(room),
    room,
    seq,
    event,
  };
}

/** The urgency header (RFC 8030 §5.3): notify's `push.urgency`, else `normal` (a chat message). */
export function urgencyFor(option?: Exclude<PushOption, false>): PushUrgency {
  return option?.urgency ?? "normal";
}

/**
 * The payload as sent: title and body cut to their limits; then, if the
 * JSON is still over the byte limit, a `url` too long to fit even with a
 * one-character title and body is replaced by the room's default (a cut
 * URL would be broken), and the body and then the title are cut further
 * (the longest that fits, found by bisection). Room ids (≤ 164 chars) and
 * event names (≤ 64) always leave room for the default URL.
 */
export function encodeNotification(payload: PushNotificationPayload): string {
  const fitted = { ...payload, title: truncate(payload.title, PUSH_LIMITS.title), body: truncate(payload.body, PUSH_LIMITS.body) };
  const fits = (candidate: PushNotificationPayload) => utf8Length(JSON.stringify(candidate)) <= PUSH_LIMITS.payloadBytes;
  if (fits(fitted)) return JSON.stringify(fitted);
  if (!fits({ ...fitted, title: truncate(fitted.title, 1), body: truncate(fitted.body, 1) })) fitted.url = defaultNotificationUrl(fitted.room);
  for (const field of ["body", "title"] as const) {
    const original = fitted[field];
    let low = Math.min(1, original.length); // at least the ellipsis stays, to show something was cut
    let high = original.length;
    while (low < high) {
      const mid = Math.ceil((low + high) / 2);
      if (fits({ ...fitted, [field]: truncate(original, mid) })) low = mid;
      else high = mid - 1;
    }
    fitted[field] = truncate(original, low);
    if (fits(fitted)) break;
  }
  return JSON.stringify(fitted);
}
