/**
 * Pusher's webhook format (https://pusher.com/docs/channels/server_api/webhooks/),
 * so that every official Pusher server SDK's `webhook()` verifies and parses
 * our calls: a JSON body `{"time_ms": …, "events": […]}`, signed with
 * HMAC-SHA256 over the raw body, keyed with the app secret, in hex.
 *
 * Each event also carries an `id`, unique and the same on every retry, so a
 * receiver can drop the duplicates that at-least-once delivery brings.
 */
import type { Envelope } from "../../protocol/envelope";
import { hmacSha256Hex } from "../auth/hmac-hex";

export const WEBHOOK_EVENT_NAMES = ["channel_occupied", "channel_vacated", "member_added", "member_removed", "client_event", "cache_miss", "message"] as const;
export type WebhookEventName = (typeof WEBHOOK_EVENT_NAMES)[number];

/** An event as the room produces it, before it gets its id. */
export type WebhookEventInput =
  | { name: "channel_occupied" | "channel_vacated" | "cache_miss"; channel: string }
  | { name: "member_added" | "member_removed"; channel: string; user_id: string }
  | { name: "client_event"; channel: string; event: string; data: string; socket_id: string; user_id?: string }
  | { name: "message"; channel: string; seq: number; event: string; data: unknown; user_id?: string };

export type WebhookEvent = WebhookEventInput & { id: string };

/** `message`: an event of the room's log, with its sender as `user_id` when it has one. */
export function messageEvent(envelope: Envelope): WebhookEventInput {
  const from = envelope.from?.id;
  return { name: "message", channel: envelope.room, seq: envelope.seq, event: envelope.event, data: envelope.data, ...(from === undefined ? {} : { user_id: from }) };
}

/**
 * `client_event` from the frame the hub relays (`{"event","channel","data","user_id"?}`,
 * protocol/pusher-socket.ts). `data` is a string, as in Pusher's webhooks.
 */
export function clientEventFromFrame(channel: string, socketId: string, frame: string): WebhookEventInput {
  const { event, data, user_id } = JSON.parse(frame) as { event: string; data: unknown; user_id?: string };
  const text = typeof data === "string" ? data : JSON.stringify(data ?? null);
  return { name: "client_event", channel, event, data: text, socket_id: socketId, ...(user_id === undefined ? {} : { user_id }) };
}

/** The request body of one call. */
export function webhookBody(timeMs: number, events: readonly string[]): string {
  // Events are stored as their JSON text: the body is assembled, not re-serialized.
  return `{"time_ms":${timeMs},"events":[${events.join(",")}]}`;
}

/** `X-Pusher-Signature`: hex HMAC-SHA256 of the raw body with the app secret. */
export function webhookSignature(body: string, secret: string): Promise<string> {
  return hmacSha256Hex(secret, body);
}
