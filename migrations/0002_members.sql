-- Room membership and read pointers, written by each room behind the
-- response. GET /me/unread reads a user's rows through the primary key, and
-- counts unread messages per room through messages' (room, seq) key.

CREATE TABLE members (
  user_id    TEXT    NOT NULL,
  room       TEXT    NOT NULL,
  last_read  INTEGER NOT NULL DEFAULT 0,   -- never moves backwards
  updated_at INTEGER NOT NULL,             -- ms since the epoch
  PRIMARY KEY (user_id, room)
) WITHOUT ROWID;

CREATE INDEX members_by_room ON members (room, user_id);
