/**
 * The room's durable log, in the object's own SQLite storage.
 *
 * `events` is both the resume tail and the D1 outbox: every accepted event is
 * written here (committed before any response or frame leaves the object, by
 * the output gate), and rows stay until they have reached D1 *and* fallen
 * out of the tail window. `meta` holds two counters:
 *
 *   flushed_seq   every seq <= this is in D1
 *   trimmed_seq   every seq <= this has been deleted here (read it from D1)
 *
 * The last seq ever assigned is not a stored counter: it is the highest seq
 * in `events`, or `trimmed_seq` when a trim emptied the table (a trim never
 * deletes past what was assigned, so that is the last one), so it never goes
 * down and a seq is never reused. Keeping it out of `meta` saves one SQL
 * statement per accepted event. (Rooms written before kept it in `meta` as
 * `last_seq`; it is still read, and can only agree or be lower.)
 *
 * `idempotency` remembers clientIds and idempotencyKeys for a window, with the
 * envelope they produced, so a retry returns the original without a new seq.
 */
import { makeEnvelope, type Envelope, type EventData, type UserRef } from "../../protocol/envelope";
import { EncodedEvent } from "./encoded-event";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY,
  json TEXT NOT NULL,
  sender_role TEXT,
  accepted_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value
);
CREATE TABLE IF NOT EXISTS idempotency (
  key TEXT PRIMARY KEY,
  seq INTEGER NOT NULL,
  json TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS idempotency_created ON idempotency (created_at);
`;

/**
 * Several events in one statement: `[seq, json, sender_role]` rows travel as
 * one JSON array, unpacked by json_each (as D1Store does for D1), so a batch
 * costs the same few statements whatever its size. The envelope goes in as a
 * JSON string and comes out as exactly that text.
 */
const INSERT_EVENTS = `INSERT INTO events (seq, json, sender_role, accepted_at)
SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), ?2 FROM json_each(?1)`;
const INSERT_IDEMPOTENCY = `INSERT OR REPLACE INTO idempotency (key, seq, json, created_at)
SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), ?2 FROM json_each(?1)`;

type EventRow = { seq: number; json: string; sender_role: string | null };
const toEvent = (row: EventRow) => new EncodedEvent(row.seq, row.json, undefined, row.sender_role);

export interface NewEvent {
  event: string;
  from?: UserRef;
  data: EventData;
  clientId?: string;
  senderRole?: string;
  /** Scoped idempotency key (see ChatRoom.accept); remembered with the envelope. */
  idempotencyKey?: string;
  /** Pusher `socket_id` to skip in the live fan-out; not stored (see EncodedEvent). */
  exceptSocketId?: string;
}

export class RoomLog {
  #lastSeq: number;
  #flushedSeq: number;
  #trimmedSeq: number;
  #room: string | undefined;

  constructor(private readonly storage: DurableObjectStorage) {
    storage.sql.exec(SCHEMA);
    this.#flushedSeq = this.#meta("flushed_seq", 0);
    this.#trimmedSeq = this.#meta("trimmed_seq", 0);
    const newest = storage.sql.exec<{ seq: number | null }>("SELECT MAX(seq) AS seq FROM events").one().seq ?? 0;
    this.#lastSeq = Math.max(newest, this.#trimmedSeq, this.#meta("last_seq", 0));
    const room = storage.sql.exec("SELECT value FROM meta WHERE key = 'room'").toArray()[0]?.value;
    this.#room = typeof room === "string" ? room : undefined;
  }

  get lastSeq(): number { return this.#lastSeq; }
  get flushedSeq(): number { return this.#flushedSeq; }
  /** Events with seq <= trimmedSeq are only in D1. */
  get trimmedSeq(): number { return this.#trimmedSeq; }
  get room(): string | undefined { return this.#room; }

  /** Remembers the room's name (the object's id is derived from it). */
  setRoom(room: string): void {
    if (this.#room === room) return;
    this.#room = room;
    this.storage.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('room', ?)", room);
  }

  /** The envelope an idempotency key produced, if it is still remembered. */
  findIdempotent(key: string, notBefore: number): EncodedEvent | undefined {
    const row = this.storage.sql
      .exec<{ seq: number; json: string }>("SELECT seq, json FROM idempotency WHERE key = ? AND created_at >= ?", key, notBefore)
      .toArray()[0];
    return row ? new EncodedEvent(row.seq, row.json) : undefined;
  }

  /** Assigns the next seq and stores the event; one SQLite transaction. */
  append(input: NewEvent, now: number): EncodedEvent {
    return this.appendAll([input], now)[0]!;
  }

  /**
   * Assigns consecutive seqs to `inputs` and stores them all in one SQLite
   * transaction (one or two statements for any number): all of them or, if
   * a write fails, none (and no seq is used).
   */
  appendAll(inputs: readonly NewEvent[], now: number): EncodedEvent[] {
    const room = this.#room;
    if (!room) throw new Error("room name unknown: setRoom must be called before append");
    const ts = new Date(now).toISOString();
    const events = inputs.map((input, i) => {
      const seq = this.#lastSeq + 1 + i;
      const envelope: Envelope = makeEnvelope({ room, seq, id: crypto.randomUUID(), event: input.event, from: input.from, data: input.data, ts, clientId: input.clientId });
      return new EncodedEvent(seq, JSON.stringify(envelope), envelope, input.senderRole ?? null, input.exceptSocketId);
    });
    const sql = this.storage.sql;
    const write = () => {
      if (inputs.length === 1) {
        const [input, { seq, json }] = [inputs[0]!, events[0]!];
        sql.exec("INSERT INTO events (seq, json, sender_role, accepted_at) VALUES (?, ?, ?, ?)", seq, json, input.senderRole ?? null, now);
        if (input.idempotencyKey) sql.exec("INSERT OR REPLACE INTO idempotency (key, seq, json, created_at) VALUES (?, ?, ?, ?)", input.idempotencyKey, seq, json, now);
        return;
      }
      sql.exec(INSERT_EVENTS, JSON.stringify(events.map((event, i) => [event.seq, event.json, inputs[i]!.senderRole ?? null])), now);
      const keyed = inputs.flatMap((input, i) => (input.idempotencyKey ? [[input.idempotencyKey, events[i]!.seq, events[i]!.json]] : []));
      if (keyed.length > 0) sql.exec(INSERT_IDEMPOTENCY, JSON.stringify(keyed), now);
    };
    // One statement is atomic by itself: only a write of two or more runs inside a savepoint (a lone event without
    // an idempotency key, the commonest case, does not pay for one).
    if (inputs.length === 1 && !inputs[0]!.idempotencyKey) write();
    else this.storage.transactionSync(write);
    this.#lastSeq += inputs.length;
    return events;
  }

  /**
   * The room's newest event if it was accepted at or after `notBefore` and
   * is still in the tail (which keeps it ROOM_TAIL_SECONDS, 24 h by
   * default): a cache channel's cached event.
   */
  lastSince(notBefore: number): EncodedEvent | undefined {
    const row = this.storage.sql
      .exec<EventRow>("SELECT seq, json, sender_role FROM events WHERE seq = ? AND accepted_at >= ?", this.#lastSeq, notBefore)
      .toArray()[0];
    return row ? toEvent(row) : undefined;
  }

  /** Events with seq > after, oldest first, from local storage only. */
  readAfter(after: number, limit: number): EncodedEvent[] {
    return this.storage.sql
      .exec<EventRow>("SELECT seq, json, sender_role FROM events WHERE seq > ? ORDER BY seq LIMIT ?", after, limit)
      .toArray()
      .map(toEvent);
  }

  /** The newest `limit` events with seq < before, oldest first, local only. */
  readBefore(before: number, limit: number): EncodedEvent[] {
    return this.storage.sql
      .exec<EventRow>("SELECT seq, json, sender_role FROM events WHERE seq < ? ORDER BY seq DESC LIMIT ?", before, limit)
      .toArray()
      .reverse()
      .map(toEvent);
  }

  /** Events not yet in D1, oldest first. */
  unflushed(limit: number): EncodedEvent[] {
    return this.readAfter(this.#flushedSeq, limit);
  }

  get unflushedCount(): number {
    return this.#lastSeq - this.#flushedSeq;
  }

  markFlushed(seq: number): void {
    if (seq <= this.#flushedSeq) return;
    this.storage.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('flushed_seq', ?)", seq);
    this.#flushedSeq = seq;
  }

  /**
   * Deletes events that are in D1 and outside the tail window (older than
   * the newest `keepEvents`, or accepted before `keepSince`). Never deletes
   * an event D1 does not hold yet.
   */
  trim(keepEvents: number, keepSince: number): void {
    const byCount = this.#lastSeq - keepEvents;
    const byAge = this.storage.sql
      .exec<{ seq: number | null }>("SELECT MAX(seq) AS seq FROM events WHERE accepted_at < ?", keepSince)
      .one().seq ?? 0;
    const upTo = Math.min(this.#flushedSeq, Math.max(byCount, byAge));
    if (upTo <= this.#trimmedSeq) return;
    this.storage.transactionSync(() => {
      this.storage.sql.exec("DELETE FROM events WHERE seq <= ?", upTo);
      this.storage.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('trimmed_seq', ?)", upTo);
    });
    this.#trimmedSeq = upTo;
  }

  /** Forgets idempotency keys older than the window. */
  pruneIdempotency(notBefore: number): void {
    this.storage.sql.exec("DELETE FROM idempotency WHERE created_at < ?", notBefore);
  }

  #meta(key: string, fallback: number): number {
    const value = this.storage.sql.exec("SELECT value FROM meta WHERE key = ?", key).toArray()[0]?.value;
    return typeof value === "number" ? value : fallback;
  }
}
