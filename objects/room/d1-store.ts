/**
 * The room's view of D1: writing batches of accepted events, and reading
 * history the object no longer keeps. D1 is the system of record; writes are
 * idempotent (keyed by room and seq) so a retried flush never duplicates.
 */
import { jsonRowsInsert } from "../../server/json-rows-insert";
import { EncodedEvent } from "./encoded-event";
import type { MemberChange } from "./room-members";

/** D1 caps a statement's size; events are sent in chunks of at most this many bytes. */
const MAX_STATEMENT_BYTES = 512 * 1024;

/**
 * One statement inserts a whole chunk: the events travel as one JSON array of
 * `[envelope, senderRole]` pairs bound to one parameter and unpacked by
 * SQLite's json_each, so a batch costs one statement per chunk, not per event.
 */
const INSERT_MESSAGES = jsonRowsInsert(
  "messages",
  {
    room: "$[0].room", seq: "$[0].seq", id: "$[0].id", event: "$[0].event", from_id: "$[0].from.id", from_name: "$[0].from.name",
    from_role: "$[1]", data: "$[0].data", ts: "$[0].ts", client_id: "$[0].clientId", envelope: "$[0]",
  },
  "ON CONFLICT (room, seq) DO NOTHING",
);

const UPSERT_ROOM = `
INSERT INTO rooms (room, last_seq, updated_at) VALUES (?1, ?2, ?3)
ON CONFLICT (room) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq), updated_at = excluded.updated_at`;

const UPSERT_MEMBERS = `
INSERT INTO members (user_id, room, last_read, updated_at)
SELECT json_extract(value, '$[0]'), ?2, json_extract(value, '$[1]'), ?3 FROM json_each(?1) WHERE true
ON CONFLICT (user_id, room) DO UPDATE SET last_read = max(last_read, excluded.last_read), updated_at = excluded.updated_at`;

type MessageRow = { seq: number; envelope: string; from_role: string | null };
const toEvent = (row: MessageRow) => new EncodedEvent(row.seq, row.envelope, undefined, row.from_role);

export class D1Store {
  constructor(private readonly db: D1Database) {}

  /** Writes a room's events and member changes in one D1 round trip; resolves with the number of statements it took. */
  async write(room: string, events: EncodedEvent[], members: MemberChange[] = []): Promise<number> {
    if (events.length === 0 && members.length === 0) return 0;
    const statements: D1PreparedStatement[] = [];
    let chunk: string[] = [];
    let bytes = 0;
    const flushChunk = () => {
      if (chunk.length === 0) return;
      statements.push(this.db.prepare(INSERT_MESSAGES).bind(`[${chunk.join(",")}]`));
      chunk = [];
      bytes = 0;
    };
    for (const event of events) {
      if (bytes + event.json.length > MAX_STATEMENT_BYTES) flushChunk();
      chunk.push(`[${event.json},${JSON.stringify(event.senderRole)}]`);
      bytes += event.json.length + 1;
    }
    flushChunk();
    const now = Date.now();
    const last = events[events.length - 1];
    if (last) statements.push(this.db.prepare(UPSERT_ROOM).bind(room, last.seq, now));
    if (members.length > 0) {
      const rows = JSON.stringify(members.map((m) => [m.userId, m.lastRead]));
      statements.push(this.db.prepare(UPSERT_MEMBERS).bind(rows, room, now));
    }
    await this.db.batch(statements);
    return statements.length;
  }

  /** Events with after < seq < below, oldest first. */
  async readAfter(room: string, after: number, below: number, limit: number): Promise<EncodedEvent[]> {
    const { results } = await this.db
      .prepare("SELECT seq, envelope, from_role FROM messages WHERE room = ? AND seq > ? AND seq < ? ORDER BY seq LIMIT ?")
      .bind(room, after, below, limit)
      .all<MessageRow>();
    return results.map(toEvent);
  }

  /** The newest `limit` events with seq < before, oldest first. */
  async readBefore(room: string, before: number, limit: number): Promise<EncodedEvent[]> {
    const { results } = await this.db
      .prepare("SELECT seq, envelope, from_role FROM messages WHERE room = ? AND seq < ? ORDER BY seq DESC LIMIT ?")
      .bind(room, before, limit)
      .all<MessageRow>();
    return results.reverse().map(toEvent);
  }
}
