/**
 * Push attempts on their way to D1's push_logs. Each attempt's outcome is
 * written here, in the room's own storage, in the same transaction that
 * settles its job, and copied to D1 afterwards in one batch. So an attempt is
 * never lost to a D1 hiccup (it stays here and is retried), and never logged
 * twice (each entry carries a uuid that push_logs is keyed by). The same
 * write deletes subscriptions that answered 404/410.
 */
import type { PushLogEntry, PushStore } from "../../server/push/store";

/** Entries per D1 round trip. */
const BATCH = 500;

export class PushLogOutbox {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(`CREATE TABLE IF NOT EXISTS push_log_outbox (
      id TEXT PRIMARY KEY,
      entry TEXT NOT NULL
    )`);
  }

  /** Queues entries (call inside the transaction that settles their jobs). */
  add(entries: PushLogEntry[]): void {
    for (const entry of entries) this.sql.exec("INSERT OR IGNORE INTO push_log_outbox (id, entry) VALUES (?, ?)", entry.id, JSON.stringify(entry));
  }

  get pending(): number {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM push_log_outbox").one().n;
  }

  /** Writes everything queued to D1; throws (keeping the entries) when D1 fails. */
  async flush(store: PushStore): Promise<void> {
    for (;;) {
      const rows = this.sql.exec<{ id: string; entry: string }>("SELECT id, entry FROM push_log_outbox ORDER BY rowid LIMIT ?", BATCH).toArray();
      if (rows.length === 0) return;
      await store.record(rows.map((row) => JSON.parse(row.entry) as PushLogEntry));
      for (const row of rows) this.sql.exec("DELETE FROM push_log_outbox WHERE id = ?", row.id);
      if (rows.length < BATCH) return;
    }
  }
}
