/**
 * The room's members and their read pointers, in the object's storage.
 *
 * A user becomes a member by sending, reading, or (for their own `user:<id>`
 * inbox) being notified. Each member's last-read seq only moves forward: a
 * late or replayed receipt for an older seq is a no-op. Changes are marked
 * with a version and copied to D1 (the `members` table behind GET
 * /me/unread) by the same alarm that flushes events; `flushed_version`
 * records what D1 already holds, so nothing is sent twice without need and
 * nothing is lost if a flush fails.
 */
export interface MemberChange {
  userId: string;
  lastRead: number;
  version: number;
}

export class RoomMembers {
  /** Users known to be members, so the send path skips the insert after the first time. */
  readonly #known = new Set<string>();
  /**
   * Up to two member ids, read once per wake and then kept up to date by
   * `join` (members are never removed): enough to answer hasMemberOtherThan,
   * which the push queue asks for every accepted event, without a query.
   */
  #firstTwo?: string[];

  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS members (
      user_id TEXT PRIMARY KEY,
      last_read INTEGER NOT NULL DEFAULT 0,
      version INTEGER NOT NULL DEFAULT 1,
      flushed_version INTEGER NOT NULL DEFAULT 0
    )`);
  }

  lastRead(userId: string): number {
    return this.sql.exec<{ last_read: number }>("SELECT last_read FROM members WHERE user_id = ?", userId).toArray()[0]?.last_read ?? 0;
  }

  /** Makes `userId` a member (no-op when already one). */
  join(userId: string): void {
    if (this.#known.has(userId)) return;
    const inserted = this.sql.exec("INSERT OR IGNORE INTO members (user_id) VALUES (?)", userId).rowsWritten > 0;
    this.#known.add(userId);
    if (inserted && this.#firstTwo && this.#firstTwo.length < 2) this.#firstTwo.push(userId);
  }

  /** Records `seq` as read by `userId`. Returns true when the pointer moved forward. */
  markRead(userId: string, seq: number): boolean {
    this.join(userId);
    const moved = this.sql.exec("UPDATE members SET last_read = ?, version = version + 1 WHERE user_id = ? AND last_read < ?", seq, userId, seq);
    return moved.rowsWritten > 0;
  }

  /** Is anyone but `userId` a member? (Whether an event could be pushed to someone.) */
  hasMemberOtherThan(userId: string | undefined): boolean {
    this.#firstTwo ??= this.sql.exec<{ user_id: string }>("SELECT user_id FROM members LIMIT 2").toArray().map((row) => row.user_id);
    return this.#firstTwo.some((id) => id !== userId);
  }

  /** Member ids after `cursor` in id order, a page at a time (the push queue walks them). */
  idsAfter(cursor: string, limit: number): string[] {
    return this.sql
      .exec<{ user_id: string }>("SELECT user_id FROM members WHERE user_id > ? ORDER BY user_id LIMIT ?", cursor, limit)
      .toArray()
      .map((row) => row.user_id);
  }

  /** Members whose state D1 does not hold yet. */
  unflushed(limit: number): MemberChange[] {
    return this.sql
      .exec<{ user_id: string; last_read: number; version: number }>(
        "SELECT user_id, last_read, version FROM members WHERE version > flushed_version LIMIT ?",
        limit,
      )
      .toArray()
      .map((row) => ({ userId: row.user_id, lastRead: row.last_read, version: row.version }));
  }

  get unflushedCount(): number {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM members WHERE version > flushed_version").one().n;
  }

  /** Marks these versions as held by D1 (a newer change made meanwhile stays pending). */
  markFlushed(changes: MemberChange[]): void {
    for (const change of changes) {
      this.sql.exec("UPDATE members SET flushed_version = max(flushed_version, ?) WHERE user_id = ?", change.version, change.userId);
    }
  }
}
