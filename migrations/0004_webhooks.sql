-- Webhooks (SPEC §11): one row per call a room made to a WEBHOOK_URLS
-- receiver, written by the rooms behind the response. Rows older than 7 days
-- are deleted by the rooms as they write new ones (docs/api.md, "Webhooks").

CREATE TABLE webhook_logs (
  id          TEXT    PRIMARY KEY,       -- uuid: the idempotency key of the writer's retries
  room        TEXT    NOT NULL,
  url         TEXT    NOT NULL,          -- without its query string
  first_event TEXT    NOT NULL,          -- id of the batch's first event
  events      INTEGER NOT NULL,          -- events in the batch
  status      TEXT    NOT NULL,          -- sent | retry | failed | dropped
  http_status INTEGER,                   -- NULL when no answer came (network error, timeout, refused)
  error       TEXT,
  attempt     INTEGER NOT NULL,          -- 1, 2, … for the same first event
  created_at  INTEGER NOT NULL           -- ms since the epoch
) WITHOUT ROWID;

CREATE INDEX webhook_logs_by_room ON webhook_logs (room, created_at);
CREATE INDEX webhook_logs_by_age ON webhook_logs (created_at);
