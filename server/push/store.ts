/**
 * Web Push in D1: the users' subscriptions (push_subscriptions) and the log
 * of every delivery attempt (push_logs). Used by the push routes and by the
 * rooms' push queues.
 */
import { jsonRowsInsert } from "../json-rows-insert";
import { PUSH_LIMITS, type PushDevice } from "../../protocol/push";
import type { PushTarget } from "./sender";

/** One delivery attempt's outcome, as push_logs keeps it. */
export interface PushLogEntry {
  /** A uuid chosen when the attempt ended: writing the same entry twice stores it once. */
  id: string;
  userId: string;
  room: string | null;
  seq: number | null;
  endpoint: string;
  /** The subscription's auth secret: a `gone` entry deletes the subscription only if it was not replaced since. */
  auth: string;
  status: "sent" | "retry" | "failed" | "gone";
  httpStatus: number | null;
  error: string | null;
  attempt: number;
  at: number;
}

export interface UserPushTarget extends PushTarget {
  userId: string;
}

export interface NewSubscription {
  endpoint: string;
  p256dh: string;
  auth: string;
  deviceType: string | null;
  deviceName: string | null;
}

type DeviceRow = { endpoint: string; device_type: string | null; device_name: string | null; created_at: number; updated_at: number; last_used_at: number | null };

const DEVICE_COLUMNS = "endpoint, device_type, device_name, created_at, updated_at, last_used_at";

const toDevice = (row: DeviceRow): PushDevice => ({
  endpoint: row.endpoint,
  deviceType: row.device_type,
  deviceName: row.device_name,
  createdAt: new Date(row.created_at).toISOString(),
  updatedAt: new Date(row.updated_at).toISOString(),
  lastUsedAt: row.last_used_at === null ? null : new Date(row.last_used_at).toISOString(),
});

/** Same endpoint again: new keys and owner, device fields kept unless given, created_at kept. */
const UPSERT = `
INSERT INTO push_subscriptions (endpoint, user_id, p256dh, auth, device_type, device_name, created_at, updated_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
ON CONFLICT (endpoint) DO UPDATE SET
  user_id = excluded.user_id, p256dh = excluded.p256dh, auth = excluded.auth,
  device_type = coalesce(excluded.device_type, device_type),
  device_name = coalesce(excluded.device_name, device_name),
  updated_at = excluded.updated_at
RETURNING ${DEVICE_COLUMNS}`;

/** Keeps a user's newest PUSH_LIMITS.subscriptionsPerUser devices. */
const PRUNE = `
DELETE FROM push_subscriptions WHERE user_id = ?1 AND id NOT IN (
  SELECT id FROM push_subscriptions WHERE user_id = ?1 ORDER BY updated_at DESC, id DESC LIMIT ?2)`;

const INSERT_LOGS = jsonRowsInsert(
  "push_logs",
  { id: "$.id", user_id: "$.userId", room: "$.room", seq: "$.seq", endpoint: "$.endpoint", status: "$.status", http_status: "$.httpStatus", error: "$.error", attempt: "$.attempt", created_at: "$.at" },
  "ON CONFLICT (id) DO NOTHING",
);

const DELETE_GONE = `
DELETE FROM push_subscriptions WHERE (endpoint, auth) IN (
  SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?1))`;

const TOUCH_USED = `
UPDATE push_subscriptions SET last_used_at = max(coalesce(last_used_at, 0), ?2)
WHERE endpoint IN (SELECT value FROM json_each(?1))`;

/** Log entries per statement (each is under 3 KB of JSON). */
const LOGS_PER_STATEMENT = 100;

export class PushStore {
  constructor(private readonly db: D1Database) {}

  /** Creates or updates the subscription for `endpoint`, now owned by `userId`. */
  async upsert(userId: string, subscription: NewSubscription, now = Date.now()): Promise<PushDevice> {
    const { endpoint, p256dh, auth, deviceType, deviceName } = subscription;
    const [upserted] = await this.db.batch<DeviceRow>([
      this.db.prepare(UPSERT).bind(endpoint, userId, p256dh, auth, deviceType, deviceName, now),
      this.db.prepare(PRUNE).bind(userId, PUSH_LIMITS.subscriptionsPerUser),
    ]);
    return toDevice(upserted!.results[0]!);
  }

  async list(userId: string): Promise<PushDevice[]> {
    const { results } = await this.db
      .prepare(`SELECT ${DEVICE_COLUMNS} FROM push_subscriptions WHERE user_id = ? ORDER BY created_at, id`)
      .bind(userId)
      .all<DeviceRow>();
    return results.map(toDevice);
  }

  /** Deletes `userId`'s subscription for `endpoint`; false when they have none (someone else's is left alone). */
  async remove(userId: string, endpoint: string): Promise<boolean> {
    const result = await this.db.prepare("DELETE FROM push_subscriptions WHERE endpoint = ? AND user_id = ?").bind(endpoint, userId).run();
    return result.meta.changes > 0;
  }

  /** Every device of these users. */
  async targetsFor(userIds: string[]): Promise<UserPushTarget[]> {
    if (userIds.length === 0) return [];
    const { results } = await this.db
      .prepare("SELECT user_id, endpoint, p256dh, auth FROM push_subscriptions WHERE user_id IN (SELECT value FROM json_each(?1)) ORDER BY user_id, id")
      .bind(JSON.stringify(userIds))
      .all<{ user_id: string; endpoint: string; p256dh: string; auth: string }>();
    return results.map((row) => ({ userId: row.user_id, endpoint: row.endpoint, p256dh: row.p256dh, auth: row.auth }));
  }

  /**
   * Writes attempts to push_logs (idempotently, by id) in one round trip,
   * and applies what they mean to the subscriptions: `gone` deletes the
   * subscription, `sent` marks it used.
   */
  async record(entries: PushLogEntry[]): Promise<void> {
    if (entries.length === 0) return;
    const statements: D1PreparedStatement[] = [];
    for (let i = 0; i < entries.length; i += LOGS_PER_STATEMENT) {
      const rows = entries.slice(i, i + LOGS_PER_STATEMENT).map(({ auth: _auth, ...row }) => row);
      statements.push(this.db.prepare(INSERT_LOGS).bind(JSON.stringify(rows)));
    }
    const gone = entries.filter((e) => e.status === "gone").map((e) => [e.endpoint, e.auth]);
    if (gone.length > 0) statements.push(this.db.prepare(DELETE_GONE).bind(JSON.stringify(gone)));
    const used = entries.filter((e) => e.status === "sent");
    if (used.length > 0) {
      const at = Math.max(...used.map((e) => e.at));
      statements.push(this.db.prepare(TOUCH_USED).bind(JSON.stringify([...new Set(used.map((e) => e.endpoint))]), at));
    }
    await this.db.batch(statements);
  }
}
