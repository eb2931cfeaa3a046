/**
 * Web Push on the wire (SPEC §7): the subscription a browser posts, and the
 * notification a service worker receives. The service checks the endpoint's
 * host (https, public) where its configuration is known
 * (server/push/endpoint-policy.ts).
 */
import * as v from "valibot";

/** What a push's decrypted body is: JSON, at most PUSH_LIMITS.payloadBytes. */
export interface PushNotificationPayload {
  title: string;
  body: string;
  /** What a click opens: a path on the page's origin (`/?room=lobby`) or an absolute URL. */
  url: string;
  room: string;
  seq: number;
  event: string;
}

export const PUSH_LIMITS = {
  /** Characters (UTF-16 code units, never splitting a pair), the ellipsis included. */
  title: 100,
  body: 200,
  /** UTF-8 bytes of the whole JSON payload. */
  payloadBytes: 1000,
  endpointLength: 2048,
  /** Decoded sizes of a subscription's keys (RFC 8291 §3): an uncompressed P-256 point, a 16-byte secret. */
  p256dhBytes: 65,
  authBytes: 16,
  /** Devices per user; posting one more drops the least recently updated. */
  subscriptionsPerUser: 20,
} as const;

/** RFC 8030 §5.3 urgencies. */
export const PUSH_URGENCIES = ["very-low", "low", "normal", "high"] as const;
export type PushUrgency = (typeof PUSH_URGENCIES)[number];

/** Decoded length of unpadded (or `=`-padded) base64url, or -1 when it is not base64url. */
export function base64UrlByteLength(text: string): number {
  const match = /^([A-Za-z0-9_-]*)(={0,2})$/.exec(text);
  if (!match) return -1;
  const chars = match[1]!.length;
  if (chars % 4 === 1) return -1;
  if (match[2] && (chars + match[2].length) % 4 !== 0) return -1;
  return Math.floor((chars * 3) / 4);
}

const base64UrlKey = (bytes: number) =>
  v.pipe(
    v.string(),
    v.check((text) => base64UrlByteLength(text) !== -1, "must be base64url (A-Z a-z 0-9 - _)"),
    v.check((text) => base64UrlByteLength(text) === bytes, `must decode to ${bytes} bytes`),
  );

const isUrl = (text: string) => {
  try {
    new URL(text);
    return true;
  } catch {
    return false;
  }
};

/** A notification's `url`: a path on the page's origin (not `//host`), or an absolute http(s) URL. */
export function isNotificationUrl(text: string): boolean {
  if (text.startsWith("/")) return !text.startsWith("//") && !text.startsWith("/\\");
  try {
    const url = new URL(text);
    return url.protocol === "https:" || url.protocol === "http:";
  } catch {
    return false;
  }
}

/** `POST /push/subscriptions`: `{subscription: PushSubscription.toJSON(), deviceType?, deviceName?}`. */
export const pushSubscribeBodySchema = v.object({
  subscription: v.object({
    endpoint: v.pipe(v.string(), v.maxLength(PUSH_LIMITS.endpointLength), v.check(isUrl, "must be an absolute URL")),
    keys: v.object({
      p256dh: v.pipe(base64UrlKey(PUSH_LIMITS.p256dhBytes), v.check((key) => key.startsWith("B"), "must be an uncompressed P-256 point (0x04…)")),
      auth: base64UrlKey(PUSH_LIMITS.authBytes),
    }),
  }),
  deviceType: v.nullish(v.pipe(v.string(), v.trim(), v.maxLength(32))),
  deviceName: v.nullish(v.pipe(v.string(), v.trim(), v.maxLength(128))),
});
export type PushSubscribeBody = v.InferOutput<typeof pushSubscribeBodySchema>;

/** `DELETE /push/subscriptions`. */
export const pushUnsubscribeBodySchema = v.object({
  endpoint: v.pipe(v.string(), v.minLength(1), v.maxLength(PUSH_LIMITS.endpointLength)),
});

/** One of the caller's devices, as `POST` and `GET /push/subscriptions` show it (keys are not echoed). */
export interface PushDevice {
  endpoint: string;
  deviceType: string | null;
  deviceName: string | null;
  createdAt: string;
  updatedAt: string;
  lastUsedAt: string | null;
}
