/**
 * Webhook calls in D1's webhook_logs: one row per attempt, written by the
 * rooms in batches, idempotently (by the entry's uuid). Rows older than
 * LOG_RETENTION_MS are deleted a few hundred at a time as new ones arrive,
 * so the table holds about a week of calls without a scheduled job.
 */
import { jsonRowsInsert } from "../json-rows-insert";

export interface WebhookLogEntry {
  /** A uuid chosen when the attempt ended: writing the same entry twice stores it once. */
  id: string;
  room: string;
  url: string;
  firstEvent: string;
  events: number;
  status: "sent" | "retry" | "failed" | "dropped";
  httpStatus: number | null;
  error: string | null;
  attempt: number;
  at: number;
}

/** How long webhook_logs keeps a call. */
export const LOG_RETENTION_MS = 7 * 24 * 3600_000;
/** Old rows deleted per write (a write carries at most a few hundred new ones). */
const PRUNE_ROWS = 500;

const INSERT_LOGS = jsonRowsInsert(
  "webhook_logs",
  { id: "$.id", room: "$.room", url: "$.url", first_event: "$.firstEvent", events: "$.events", status: "$.status", http_status: "$.httpStatus", error: "$.error", attempt: "$.attempt", created_at: "$.at" },
  "ON CONFLICT (id) DO NOTHING",
);

const PRUNE = `DELETE FROM webhook_logs WHERE id IN (SELECT id FROM webhook_logs WHERE created_at < ?1 LIMIT ?2)`;

export class WebhookLogStore {
  constructor(private readonly db: D1Database) {}

  /** Writes the entries and deletes some expired ones, in one round trip. */
  async record(entries: WebhookLogEntry[], now = Date.now()): Promise<void> {
    if (entries.length === 0) return;
    await this.db.batch([
      this.db.prepare(INSERT_LOGS).bind(JSON.stringify(entries)),
      this.db.prepare(PRUNE).bind(now - LOG_RETENTION_MS, PRUNE_ROWS),
    ]);
  }
}
