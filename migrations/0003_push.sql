-- Web Push (SPEC §7). Subscriptions are written by POST/DELETE
-- /push/subscriptions and read by the rooms when they deliver; push_logs
-- holds one row per delivery attempt, written by the rooms (and by
-- POST /push/test) behind the response.

CREATE TABLE push_subscriptions (
  id           INTEGER PRIMARY KEY,
  endpoint     TEXT    NOT NULL UNIQUE,  -- the push service URL; one per browser profile and server key
  user_id      TEXT    NOT NULL,
  p256dh       TEXT    NOT NULL,         -- base64url, 65-byte uncompressed P-256 point
  auth         TEXT    NOT NULL,         -- base64url, 16-byte secret
  device_type  TEXT,
  device_name  TEXT,
  created_at   INTEGER NOT NULL,         -- ms since the epoch
  updated_at   INTEGER NOT NULL,
  last_used_at INTEGER                   -- last push the service accepted
);

CREATE INDEX push_subscriptions_by_user ON push_subscriptions (user_id, updated_at);

CREATE TABLE push_logs (
  id          TEXT    PRIMARY KEY,       -- uuid: the idempotency key of the writer's retries
  user_id     TEXT    NOT NULL,
  room        TEXT,                      -- NULL for POST /push/test
  seq         INTEGER,
  endpoint    TEXT    NOT NULL,
  status      TEXT    NOT NULL,          -- sent | retry | failed | gone
  http_status INTEGER,                   -- NULL when no answer came (network error, timeout, refused)
  error       TEXT,
  attempt     INTEGER NOT NULL,          -- 1, 2, 3
  created_at  INTEGER NOT NULL           -- ms since the epoch
) WITHOUT ROWID;

CREATE INDEX push_logs_by_user ON push_logs (user_id, created_at);
CREATE INDEX push_logs_by_room ON push_logs (room, seq);
