/**
 * GET /me/unread (SPEC §6): the caller's unread counts in every room they
 * are a member of, from D1, in one indexed query. A message is unread when
 * its seq is above the user's last-read seq and someone else sent it (or the
 * server did). Rooms the token no longer grants are left out; the user's own
 * inbox `user:<sub>` is always listed.
 */
import { authenticateClient, mayUseRoom } from "../auth/client-token";
import { json } from "../http/errors";
import type { RouteHandler } from "./context";

/**
 * members → rooms via the members primary key (user_id, room); each count is
 * a range scan of messages' primary key (room, seq) above last_read.
 */
const UNREAD_QUERY = `
SELECT mb.room AS room,
       COALESCE(r.last_seq, 0) AS lastSeq,
       mb.last_read AS lastRead,
       (SELECT COUNT(*) FROM messages m
         WHERE m.room = mb.room AND m.seq > mb.last_read
           AND (m.from_id IS NULL OR m.from_id <> ?1)) AS unread
FROM members mb LEFT JOIN rooms r ON r.room = mb.room
WHERE mb.user_id = ?1
ORDER BY mb.room`;

interface UnreadRoom {
  room: string;
  unread: number;
  lastSeq: number;
  lastRead: number;
}

export const listUnread: RouteHandler = async (request, env) => {
  const identity = await authenticateClient(request, new URL(request.url), env);
  const { results } = await env.DB.prepare(UNREAD_QUERY).bind(identity.user.id).all<UnreadRoom>();
  const inbox = `user:${identity.user.id}`;
  const rooms = results
    .filter((row) => mayUseRoom(identity, row.room))
    .map(({ room, unread, lastSeq, lastRead }) => ({ room, unread, lastSeq, lastRead }));
  if (!rooms.some((row) => row.room === inbox)) rooms.unshift({ room: inbox, unread: 0, lastSeq: 0, lastRead: 0 });
  const total = rooms.reduce((sum, row) => sum + row.unread, 0);
  return json({ total, rooms });
};
