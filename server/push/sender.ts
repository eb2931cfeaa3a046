/**
 * One Web Push attempt: encrypt the payload for the subscription (RFC 8291
 * `aes128gcm`, by @block65/webcrypto-web-push), sign a VAPID JWT for the
 * endpoint's origin (RFC 8292), POST it (RFC 8030) and classify the answer.
 *
 * The VAPID JWT is signed here with jose (ES256, the same key) rather than
 * by the library's `vapidHeaders`, because that helper refuses any endpoint
 * that is not https, and the local push services of tests and `npm start`
 * are plain http (allowed only with PUSH_ALLOW_HTTP_ENDPOINTS). One code
 * path then serves both.
 *
 * Retrying is the caller's business (objects/room/push-queue.ts); this
 * only says whether a retry makes sense.
 */
import { encryptNotification } from "@block65/webcrypto-web-push";
import { base64url, SignJWT } from "jose";
import type { PushUrgency } from "../../protocol/push";
import type { PushConfig, VapidKeys } from "./config";
import { refuseEndpoint } from "./endpoint-policy";

export interface PushTarget {
  endpoint: string;
  p256dh: string;
  auth: string;
}

export type PushOutcome =
  /** 2xx: the push service accepted the message. */
  | { kind: "sent"; httpStatus: number }
  /** 404/410: the subscription is gone for good; delete it. */
  | { kind: "gone"; httpStatus: number; error: string }
  /** 429, 5xx, a network error or a timeout: worth another attempt. */
  | { kind: "retry"; httpStatus: number | null; error: string; retryAfterMs?: number }
  /** Anything else (400, 401, 403, 413, a refused endpoint, a key that does not work): retrying cannot help. */
  | { kind: "failed"; httpStatus: number | null; error: string };

/** JWTs live 12 h (RFC 8292 allows up to 24 h). */
const JWT_LIFETIME_SECONDS = 12 * 3600;
/** How much of a push service's error body goes into push_logs. */
const ERROR_BODY_CHARS = 200;

const signingKeys = new Map<string, Promise<CryptoKey>>();

/** The ES256 signing key from the raw public point and the private scalar, imported once per key pair. */
function signingKey(vapid: VapidKeys): Promise<CryptoKey> {
  const id = `${vapid.publicKey}.${vapid.privateKey}`;
  let key = signingKeys.get(id);
  if (!key) {
    const point = base64url.decode(vapid.publicKey);
    if (point.byteLength !== 65 || point[0] !== 0x04) throw new Error("VAPID_PUBLIC_KEY is not a base64url uncompressed P-256 point (65 bytes)");
    const jwk = {
      kty: "EC",
      crv: "P-256",
      x: base64url.encode(point.slice(1, 33)),
      y: base64url.encode(point.slice(33, 65)),
      d: vapid.privateKey,
    };
    key = crypto.subtle.importKey("jwk", jwk, { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
    key.catch(() => signingKeys.delete(id));
    signingKeys.set(id, key);
  }
  return key;
}

/** `Authorization: vapid t=<jwt>, k=<public key>` for `endpoint` (RFC 8292 §3). */
export async function vapidAuthorization(endpoint: string, vapid: VapidKeys, now = Date.now()): Promise<string> {
  const jwt = await new SignJWT({})
    .setProtectedHeader({ typ: "JWT", alg: "ES256" })
    .setAudience(new URL(endpoint).origin)
    .setExpirationTime(Math.floor(now / 1000) + JWT_LIFETIME_SECONDS)
    .setSubject(vapid.subject)
    .sign(await signingKey(vapid));
  return `vapid t=${jwt}, k=${vapid.publicKey}`;
}

/** `Retry-After` as milliseconds (seconds or an HTTP date), if present and sane. */
function retryAfterMs(header: string | null, now: number): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(header);
  return Number.isFinite(date) ? Math.max(0, date - now) : undefined;
}

export interface SendOptions {
  urgency: PushUrgency;
  config: PushConfig;
  vapid: VapidKeys;
}

/** One attempt to deliver `payload` (the JSON text) to `target`. Never throws. */
export async function sendPush(target: PushTarget, payload: string, { urgency, config, vapid }: SendOptions): Promise<PushOutcome> {
  const refused = refuseEndpoint(target.endpoint, config.allowInsecureEndpoints);
  if (refused) return { kind: "failed", httpStatus: null, error: `endpoint refused: ${refused}` };
  let body: Uint8Array;
  let authorization: string;
  try {
    body = await encryptNotification(
      { endpoint: target.endpoint, expirationTime: null, keys: { p256dh: target.p256dh, auth: target.auth } },
      new TextEncoder().encode(payload),
    );
    authorization = await vapidAuthorization(target.endpoint, vapid);
  } catch (error) {
    return { kind: "failed", httpStatus: null, error: `cannot build the push: ${error instanceof Error ? error.message : String(error)}` };
  }
  let response: Response;
  // A timer cleared as soon as the answer comes (AbortSignal.timeout would stay pending and keep the room awake).
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new DOMException("timed out", "TimeoutError")), config.requestTimeoutMs);
  try {
    response = await fetch(target.endpoint, {
      method: "POST",
      headers: {
        authorization,
        ttl: String(config.ttlSeconds),
        urgency,
        "content-encoding": "aes128gcm",
        "content-type": "application/octet-stream",
      },
      body,
      redirect: "manual",
      signal: abort.signal,
    });
  } catch (error) {
    clearTimeout(timer);
    const timedOut = abort.signal.aborted;
    return { kind: "retry", httpStatus: null, error: timedOut ? `no answer within ${config.requestTimeoutMs} ms` : `network error: ${error instanceof Error ? error.message : String(error)}` };
  }
  const status = response.status;
  if (status >= 200 && status < 300) {
    clearTimeout(timer);
    await response.body?.cancel();
    return { kind: "sent", httpStatus: status };
  }
  const text = (await response.text().catch(() => "")).slice(0, ERROR_BODY_CHARS);
  clearTimeout(timer);
  const error = `push service answered ${status}${text ? `: ${text}` : ""}`;
  if (status === 404 || status === 410) return { kind: "gone", httpStatus: status, error };
  if (status === 429 || status >= 500) {
    const after = retryAfterMs(response.headers.get("retry-after"), Date.now());
    return after === undefined ? { kind: "retry", httpStatus: status, error } : { kind: "retry", httpStatus: status, error, retryAfterMs: after };
  }
  return { kind: "failed", httpStatus: status, error: status >= 300 && status < 400 ? `push service redirected (${status}); redirects are not followed` : error };
}
