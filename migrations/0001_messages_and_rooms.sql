-- The system of record for room history. Rooms write here in batches behind
-- the response; (room, seq) is the idempotency key of those writes.

CREATE TABLE messages (
  room       TEXT    NOT NULL,
  seq        INTEGER NOT NULL,
  id         TEXT    NOT NULL UNIQUE,   -- the envelope's uuid
  event      TEXT    NOT NULL,          -- "message" for chat, else the notify event name
  from_id    TEXT,                      -- NULL for server events that name no sender
  from_name  TEXT,
  from_role  TEXT,                      -- the sender's role claim (legacy API's sender_type)
  data       TEXT    NOT NULL,          -- JSON object
  ts         TEXT    NOT NULL,          -- ISO 8601, UTC
  client_id  TEXT,
  envelope   TEXT    NOT NULL,          -- the envelope exactly as clients received it
  PRIMARY KEY (room, seq)
) WITHOUT ROWID;

-- History by sender (moderation, "my messages") and by time (retention jobs).
CREATE INDEX messages_by_sender ON messages (from_id, room, seq);
CREATE INDEX messages_by_ts ON messages (ts);

CREATE TABLE rooms (
  room       TEXT    PRIMARY KEY,
  last_seq   INTEGER NOT NULL,          -- highest seq flushed to this table
  updated_at INTEGER NOT NULL           -- ms since the epoch
) WITHOUT ROWID;
