/**
 * Reads one text frame from a Pusher client into `{event, channel?, data?}`,
 * before any per-event validation. pusher-js sends `data` as an object;
 * some clients send `pusher:subscribe` data as a JSON string, so a string
 * `data` on a `pusher:` event is parsed once more.
 */
import { PUSHER_MAX_FRAME_CHARS } from "../../protocol/pusher-socket";

export interface ClientFrame {
  event: string;
  channel?: unknown;
  data?: unknown;
}

/** The frame, or a message saying why it is not one. */
export function readClientFrame(raw: string | ArrayBuffer): ClientFrame | string {
  if (typeof raw !== "string") return "frames are JSON text, not binary";
  if (raw.length > PUSHER_MAX_FRAME_CHARS) return `frames are limited to ${PUSHER_MAX_FRAME_CHARS} characters`;
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return "frame is not valid JSON";
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) return "frame must be a JSON object";
  const { event, channel, data } = json as Record<string, unknown>;
  if (typeof event !== "string" || event.length === 0) return "frame needs an event name";
  let payload = data;
  if (typeof data === "string" && event.startsWith("pusher:")) {
    try {
      payload = JSON.parse(data);
    } catch {
      // left as the string; the event's schema says what it expected
    }
  }
  return { event, channel, data: payload };
}
