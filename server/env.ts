/** Bindings, vars and secrets the Worker and the room object receive. */
import type { ChatRoom } from "../objects/ChatRoom";
import type { PusherHub } from "../objects/PusherHub";

export interface Env {
  ROOMS: DurableObjectNamespace<ChatRoom>;
  /** Pusher Channels connections, sharded over PUSHER_HUB_SHARDS objects (docs/pusher.md). */
  PUSHER_HUBS: DurableObjectNamespace<PusherHub>;
  DB: D1Database;

  // Secrets: Wrangler secrets in production, .dev.vars locally. Never defaulted.
  /** HS256 secrets for client tokens, comma-separated: the first signs dev tokens, all verify (rotation). */
  JWT_SECRET?: string;
  NOTIFY_SECRET?: string;
  VAPID_PUBLIC_KEY?: string;
  VAPID_PRIVATE_KEY?: string;
  VAPID_SUBJECT?: string;
  PUSHER_APP_ID?: string;
  PUSHER_KEY?: string;
  PUSHER_SECRET?: string;
  /** Base64 of 32 random bytes: the key `shared_secret`s of private-encrypted- channels are derived from (docs/pusher.md). */
  PUSHER_ENCRYPTION_MASTER_KEY?: string;

  // Client tokens from the app's own identity provider (docs/api.md, "Using your identity provider's tokens").
  /** Public keys that verify client tokens: PEM SPKI blocks, or a JWK set as JSON. */
  JWT_PUBLIC_KEYS?: string;
  /** A JWKS endpoint (https) whose keys verify client tokens; fetched and cached per isolate. */
  JWT_JWKS_URL?: string;
  /** Least seconds between two fetches of JWT_JWKS_URL for an unknown kid, and the shortest caching of it (default 60). */
  JWT_JWKS_REFETCH_SECONDS?: string;
  /** Set (e.g. "1") to accept an http or private/loopback JWT_JWKS_URL: a local identity provider in tests only. */
  JWT_JWKS_ALLOW_HTTP?: string;
  /** When set, tokens must carry this `iss` (comma-separated: any of these). */
  JWT_ISSUER?: string;
  /** When set, tokens must carry this `aud` (comma-separated: any of these). */
  JWT_AUDIENCE?: string;
  /** The claim (dotted path) holding the user id (default `sub`). */
  JWT_USER_ID_CLAIM?: string;
  /** The claim (dotted path) holding the display name (default `name`). */
  JWT_NAME_CLAIM?: string;
  /** The claim (dotted path) holding the granted rooms (default `rooms`). */
  JWT_ROOMS_CLAIM?: string;

  // Vars (all strings, all optional; see server/config.ts for defaults).
  CORS_ORIGINS?: string;
  MAX_MESSAGE_BYTES?: string;
  SEND_RATE_PER_SECOND?: string;
  SEND_BURST?: string;
  MAX_WAIT_SECONDS?: string;
  MAX_PAGE_LIMIT?: string;
  ROOM_TAIL_EVENTS?: string;
  ROOM_TAIL_SECONDS?: string;
  D1_FLUSH_DELAY_MS?: string;
  IDEMPOTENCY_WINDOW_SECONDS?: string;
  PRESENCE_GRACE_MS?: string;
  SSE_HEARTBEAT_SECONDS?: string;
  /** Events a room may hold that D1 does not have yet before it refuses new ones (503); "0": no cap. */
  OUTBOX_MAX_PENDING?: string;
  /** Bytes a WebSocket that sends `ack` frames may fall behind before it is closed with 1013 (default 4 MiB); "0": no cap. */
  WS_MAX_UNACKED_BYTES?: string;
  /** "1" enables POST /dev/token (local development only: .dev.vars, never wrangler.toml). */
  DEV_TOKENS?: string;
  /** Set (e.g. "1") to accept http and private/loopback push endpoints: local push services in tests only. */
  PUSH_ALLOW_HTTP_ENDPOINTS?: string;
  /** First retry delay of a failed push (ms); it doubles for the next attempt. */
  PUSH_RETRY_BASE_MS?: string;
  /** Number of PusherHub objects sharing the Pusher connections (default 8). */
  PUSHER_HUB_SHARDS?: string;
  /** Pusher connections one hub holds before refusing new ones with 4100 (default 10000). */
  PUSHER_HUB_MAX_SOCKETS?: string;
  /** Rooms open to Pusher clients as public channels, without a signature (comma-separated ids and `prefix*`; empty: none). */
  PUSHER_PUBLIC_CHANNELS?: string;
  /**
   * Channels whose subscribers get `pusher_internal:subscription_count`: "1", "true" or "*" for every
   * (non-presence) channel, or comma-separated ids and `prefix*`; empty: none (Pusher's default).
   */
  PUSHER_SUBSCRIPTION_COUNT?: string;
  /** Webhook receivers (comma-separated URLs; empty: webhooks off). Calls are signed with PUSHER_KEY / PUSHER_SECRET. */
  WEBHOOK_URLS?: string;
  /** Webhook event names sent (comma-separated; default all but `message`). */
  WEBHOOK_EVENTS?: string;
  /** Webhook events a room keeps for its receivers before dropping the oldest (default 10000). */
  WEBHOOK_MAX_PENDING?: string;
  /** How long a quiet room's first webhook event waits for others to share its call (ms, default 1000). */
  WEBHOOK_BATCH_MS?: string;
  /** First retry delay of a failed webhook call (ms, default 2000); it doubles per attempt, up to 5 min. */
  WEBHOOK_RETRY_BASE_MS?: string;
  /** How long a failing webhook call is retried before what is pending for that URL is dropped (s, default 3600). */
  WEBHOOK_RETRY_FOR_SECONDS?: string;
}
