/**
 * Delivery attempts (Web Push, webhooks) on their way to a D1 log table.
 * Each attempt's outcome is written here, in the room's own storage, in the
 * same transaction that settles it, and copied to D1 afterwards in one
 * batch. So an attempt is never lost to a D1 hiccup (it stays here and is
 * retried), and never logged twice (each entry carries a uuid that the D1
 * table is keyed by).
 */

/** Entries per D1 round trip. */
const BATCH = 500;

export class AttemptLogOutbox<Entry extends { id: string }> {
  constructor(
    private readonly sql: SqlStorage,
    /** The local table, one per kind of attempt. */
    private readonly table: string,
  ) {
    sql.exec(`CREATE TABLE IF NOT EXISTS ${table} (
      id TEXT PRIMARY KEY,
      entry TEXT NOT NULL
    )`);
  }

  /** Queues entries (call inside the transaction that settles their attempts). */
  add(entries: Entry[]): void {
    for (const entry of entries) this.sql.exec(`INSERT OR IGNORE INTO ${this.table} (id, entry) VALUES (?, ?)`, entry.id, JSON.stringify(entry));
  }

  get pending(): number {
    return this.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM ${this.table}`).one().n;
  }

  /** Writes everything queued with `record`; throws (keeping the entries) when D1 fails. */
  async flush(record: (entries: Entry[]) => Promise<void>): Promise<void> {
    for (;;) {
      const rows = this.sql.exec<{ id: string; entry: string }>(`SELECT id, entry FROM ${this.table} ORDER BY rowid LIMIT ?`, BATCH).toArray();
      if (rows.length === 0) return;
      await record(rows.map((row) => JSON.parse(row.entry) as Entry));
      for (const row of rows) this.sql.exec(`DELETE FROM ${this.table} WHERE id = ?`, row.id);
      if (rows.length < BATCH) return;
    }
  }
}
