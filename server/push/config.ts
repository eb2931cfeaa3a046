/**
 * Web Push settings: the VAPID key pair (secrets, never defaulted) and the
 * delivery policy (vars with defaults). See docs/push.md.
 */
import { requireSecret } from "../config";
import type { Env } from "../env";

export interface VapidKeys {
  /** base64url of the uncompressed P-256 point (65 bytes): what browsers pass to pushManager.subscribe. */
  publicKey: string;
  /** base64url of the 32-byte private scalar `d`. */
  privateKey: string;
  /** `mailto:` or `https:` contact the push service may use (RFC 8292 §2.1). */
  subject: string;
}

export interface PushConfig {
  /** PUSH_ALLOW_HTTP_ENDPOINTS: accept http and private/loopback endpoints (local push services). */
  allowInsecureEndpoints: boolean;
  /** Delay before the 2nd attempt; the 3rd waits twice as long. */
  retryBaseMs: number;
  maxAttempts: number;
  /** How long the push service keeps an undelivered message (the TTL header). */
  ttlSeconds: number;
  /** A push service that has not answered by then counts as a network error. */
  requestTimeoutMs: number;
}

const cache = new WeakMap<object, PushConfig>();

export function pushConfigFrom(env: Env): PushConfig {
  const cached = cache.get(env);
  if (cached) return cached;
  const flag = (env.PUSH_ALLOW_HTTP_ENDPOINTS ?? "").trim().toLowerCase();
  const retry = env.PUSH_RETRY_BASE_MS === undefined || env.PUSH_RETRY_BASE_MS === "" ? 2000 : Number(env.PUSH_RETRY_BASE_MS);
  if (!Number.isFinite(retry) || retry < 0) throw new Error(`var PUSH_RETRY_BASE_MS must be a non-negative number, got ${JSON.stringify(env.PUSH_RETRY_BASE_MS)}`);
  const config: PushConfig = {
    allowInsecureEndpoints: flag !== "" && flag !== "0" && flag !== "false",
    retryBaseMs: retry,
    maxAttempts: 3,
    ttlSeconds: 86400,
    requestTimeoutMs: 10_000,
  };
  cache.set(env, config);
  return config;
}

/** The VAPID keys; a missing one is MissingSecretError (500 server_misconfigured on a route). */
export function vapidKeysFrom(env: Env): VapidKeys {
  return {
    publicKey: requireSecret(env, "VAPID_PUBLIC_KEY"),
    privateKey: requireSecret(env, "VAPID_PRIVATE_KEY"),
    subject: requireSecret(env, "VAPID_SUBJECT"),
  };
}
