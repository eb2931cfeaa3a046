/**
 * Configuration read from vars, with the contract's defaults. Secrets are
 * not here: they have no defaults and are read with `requireSecret`.
 */
import { DEFAULT_LIMITS, type Limits } from "../protocol/limits";
import type { Env } from "./env";

export interface RoomConfig extends Limits {
  /** Events kept in the room object's own storage after they reached D1. */
  tailEvents: number;
  /** …and for at most this long. Older history is read from D1. */
  tailSeconds: number;
  /** How long accepted events wait before the D1 flush, so they batch. */
  flushDelayMs: number;
  /** How long a clientId / idempotencyKey is remembered. */
  idempotencyWindowSeconds: number;
  /** A user whose last connection drops is announced as left after this. */
  presenceGraceMs: number;
  /**
   * Interval of the SSE `: heartbeat` comment. Besides keeping proxies from timing a quiet stream
   * out, it is how the room finds a client that vanished behind a proxy that does not pass the
   * hang-up on (wrangler dev's): the write after the hang-up is taken, the one after fails, so such
   * a client leaves presence within two intervals plus the grace period.
   */
  sseHeartbeatSeconds: number;
  /** Events waiting for D1 beyond which new events are refused (503 unavailable); 0: no cap. */
  outboxMaxPending: number;
  /** Bytes a WebSocket that acknowledges may have unacknowledged before it is closed with 1013; 0: no cap. */
  wsMaxUnackedBytes: number;
}

/** A comma-separated var as its items, trimmed, empty ones dropped ("" and unset: none). */
export function commaList(value: string | undefined): string[] {
  return (value ?? "").split(",").map((item) => item.trim()).filter((item) => item !== "");
}

/** A var that must be a non-negative number when set; the fallback when unset or empty. */
export function intVar(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`var ${name} must be a non-negative number, got ${JSON.stringify(value)}`);
  return n;
}

const cache = new WeakMap<object, RoomConfig>();

/** Reads (and caches per env object) the configuration. Throws on a malformed var. */
export function configFrom(env: Env): RoomConfig {
  const cached = cache.get(env);
  if (cached) return cached;
  const config: RoomConfig = {
    maxMessageBytes: intVar(env.MAX_MESSAGE_BYTES, DEFAULT_LIMITS.maxMessageBytes, "MAX_MESSAGE_BYTES"),
    sendRatePerSecond: intVar(env.SEND_RATE_PER_SECOND, DEFAULT_LIMITS.sendRatePerSecond, "SEND_RATE_PER_SECOND"),
    sendBurst: intVar(env.SEND_BURST, DEFAULT_LIMITS.sendBurst, "SEND_BURST"),
    maxWaitSeconds: intVar(env.MAX_WAIT_SECONDS, DEFAULT_LIMITS.maxWaitSeconds, "MAX_WAIT_SECONDS"),
    defaultPageLimit: DEFAULT_LIMITS.defaultPageLimit,
    maxPageLimit: intVar(env.MAX_PAGE_LIMIT, DEFAULT_LIMITS.maxPageLimit, "MAX_PAGE_LIMIT"),
    maxNotifyRooms: DEFAULT_LIMITS.maxNotifyRooms,
    tailEvents: intVar(env.ROOM_TAIL_EVENTS, 1000, "ROOM_TAIL_EVENTS"),
    tailSeconds: intVar(env.ROOM_TAIL_SECONDS, 24 * 3600, "ROOM_TAIL_SECONDS"),
    flushDelayMs: intVar(env.D1_FLUSH_DELAY_MS, 100, "D1_FLUSH_DELAY_MS"),
    idempotencyWindowSeconds: intVar(env.IDEMPOTENCY_WINDOW_SECONDS, 24 * 3600, "IDEMPOTENCY_WINDOW_SECONDS"),
    presenceGraceMs: intVar(env.PRESENCE_GRACE_MS, 3000, "PRESENCE_GRACE_MS"),
    sseHeartbeatSeconds: intVar(env.SSE_HEARTBEAT_SECONDS, 5, "SSE_HEARTBEAT_SECONDS"),
    outboxMaxPending: intVar(env.OUTBOX_MAX_PENDING, 100_000, "OUTBOX_MAX_PENDING"),
    wsMaxUnackedBytes: intVar(env.WS_MAX_UNACKED_BYTES, 4 * 1024 * 1024, "WS_MAX_UNACKED_BYTES"),
  };
  cache.set(env, config);
  return config;
}

/** Secrets have no defaults: a missing one is a configuration error. */
export class MissingSecretError extends Error {
  constructor(readonly secret: string) {
    super(`${secret} is not set: add it to .dev.vars locally (npm start creates one) or run \`wrangler secret put ${secret}\``);
  }
}

export function requireSecret(env: Env, name: "JWT_SECRET" | "NOTIFY_SECRET" | "VAPID_PUBLIC_KEY" | "VAPID_PRIVATE_KEY" | "VAPID_SUBJECT" | "PUSHER_APP_ID" | "PUSHER_KEY" | "PUSHER_SECRET" | "PUSHER_ENCRYPTION_MASTER_KEY"): string {
  const value = env[name];
  if (!value) throw new MissingSecretError(name);
  return value;
}
