/**
 * Each user's last-read seq in this room, in the object's storage. It only
 * ever moves forward: a late or replayed receipt for an older seq is a no-op.
 */
export class ReadReceipts {
  constructor(private readonly sql: SqlStorage) {
    sql.exec("CREATE TABLE IF NOT EXISTS reads (user_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, updated_at INTEGER NOT NULL)");
  }

  lastRead(userId: string): number {
    return this.sql.exec<{ seq: number }>("SELECT seq FROM reads WHERE user_id = ?", userId).toArray()[0]?.seq ?? 0;
  }

  /** Records `seq` as read by `userId`. Returns true when it moved forward. */
  markRead(userId: string, seq: number, now: number): boolean {
    if (seq <= this.lastRead(userId)) return false;
    this.sql.exec("INSERT OR REPLACE INTO reads (user_id, seq, updated_at) VALUES (?, ?, ?)", userId, seq, now);
    return true;
  }
}
