/**
 * Web Push for the room's members who are not here (SPEC §7), as a durable
 * queue in the object's own SQLite storage, drained by the room's alarm.
 *
 * The send path only records the event: `enqueue` words the notification
 * and inserts one `push_events` row, synchronously, in the same turn that
 * accepted the event (no await, no network). Everything else happens in
 * the alarm, after the response has left:
 *
 *  1. **Expand.** Each queued event is turned into one `push_jobs` row per
 *     device of every member who is not its sender and has no live
 *     connection to the room right now (WebSocket, SSE, or a long-poll in
 *     the last 30 s). Members are walked a page at a time by id, so a large
 *     room is expanded over several runs; the devices come from D1's
 *     push_subscriptions, for many events in one query.
 *  2. **Deliver** the jobs that are due, in parallel. The attempt is
 *     counted before it is made, so a crash mid-send cannot grant extra
 *     attempts. 2xx: done. 404/410: done, and the subscription is deleted.
 *     429, 5xx, a network error or a timeout: tried again after
 *     `retryBaseMs × 2^(attempt-1)` (or the push service's Retry-After, if
 *     longer), up to 3 attempts in all. Anything else: given up.
 *  3. **Log** every attempt to D1's push_logs through AttemptLogOutbox.
 *
 * The queue never throws into the alarm and never touches the send path's
 * state, so a push failure cannot fail or slow a send. New events ride the
 * alarm the D1 outbox arms after every accepted event; retries and leftover
 * work arm it themselves (only ever earlier than it already is).
 */
import type { Envelope } from "../../protocol/envelope";
import type { PushUrgency } from "../../protocol/push";
import type { PushOption } from "../../protocol/schemas";
import type { Env } from "../../server/env";
import { pushConfigFrom, vapidKeysFrom, type VapidKeys } from "../../server/push/config";
import { encodeNotification, notificationFor, urgencyFor } from "../../server/push/payload";
import { sendPush, type PushOutcome } from "../../server/push/sender";
import type { PushLogEntry, PushStore, UserPushTarget } from "../../server/push/store";
import { AttemptLogOutbox } from "./attempt-log-outbox";
import { armAlarmBy, d1BackoffMs } from "./room-alarm";
import type { RoomMembers } from "./room-members";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS push_events (
  seq INTEGER PRIMARY KEY,
  sender_id TEXT,
  payload TEXT NOT NULL,
  urgency TEXT NOT NULL,
  cursor TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS push_jobs (
  id INTEGER PRIMARY KEY,
  seq INTEGER NOT NULL,
  user_id TEXT NOT NULL,
  endpoint TEXT NOT NULL,
  p256dh TEXT NOT NULL,
  auth TEXT NOT NULL,
  payload TEXT NOT NULL,
  urgency TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS push_jobs_due ON push_jobs (next_at);
`;

/** Events expanded per alarm run (their devices are fetched in one D1 query). */
const EVENTS_PER_RUN = 20;
/** Members looked at per event per run. */
const MEMBERS_PER_PAGE = 100;
/** Jobs sent at once, and rounds of that per alarm run. */
const JOBS_PER_ROUND = 50;
const ROUNDS_PER_RUN = 4;
/** A Retry-After longer than this is not honoured (the TTL would make the push pointless anyway). */
const MAX_RETRY_AFTER_MS = 3600_000;
/** Backoff for D1 failures while expanding or logging. */

type EventRow = { seq: number; sender_id: string | null; payload: string; urgency: string; cursor: string };
type JobRow = { id: number; seq: number; user_id: string; endpoint: string; p256dh: string; auth: string; payload: string; urgency: string; attempts: number };

export interface PushQueueStatus {
  /** Events whose recipients are still to be found. */
  events: number;
  /** Deliveries waiting for their (next) attempt. */
  jobs: number;
  /** Attempts not yet in D1's push_logs. */
  logs: number;
  consecutiveFailures: number;
  lastError?: string;
}

export class PushQueue {
  readonly #logs: AttemptLogOutbox<PushLogEntry>;
  #running = false;
  #failures = 0;
  #lastError?: string;
  /** After a D1 failure, expansion and logging wait until then. */
  #d1NotBefore = 0;

  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly env: Env,
    private readonly members: RoomMembers,
    private readonly store: PushStore,
    /** Whether a user has a live connection to the room (any transport). */
    private readonly isOnline: (userId: string, now: number) => boolean,
  ) {
    storage.sql.exec(SCHEMA);
    this.#logs = new AttemptLogOutbox<PushLogEntry>(storage.sql, "push_log_outbox");
  }

  /**
   * Called in the turn that accepted `envelope`. Synchronous and local: one
   * insert when someone other than the sender could be notified. Never throws.
   */
  enqueue(envelope: Envelope, senderId: string | undefined, option: PushOption | undefined, now: number): void {
    if (option === false) return;
    try {
      if (!this.members.hasMemberOtherThan(senderId)) return;
      const payload = encodeNotification(notificationFor(envelope, option));
      this.storage.sql.exec(
        "INSERT OR IGNORE INTO push_events (seq, sender_id, payload, urgency, created_at) VALUES (?, ?, ?, ?, ?)",
        envelope.seq, senderId ?? null, payload, urgencyFor(option), now,
      );
    } catch (error) {
      console.error(`room ${envelope.room}: push for seq ${envelope.seq} not queued:`, error);
    }
  }

  status(): PushQueueStatus {
    const count = (table: string) => this.storage.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}`).one().n;
    return {
      events: count("push_events"),
      jobs: count("push_jobs"),
      logs: this.#logs.pending,
      consecutiveFailures: this.#failures,
      ...(this.#lastError ? { lastError: this.#lastError } : {}),
    };
  }

  /** On wake: work left over with no alarm to do it gets one. */
  async load(): Promise<void> {
    const { events, jobs, logs } = this.status();
    if (events + jobs + logs > 0) await armAlarmBy(this.storage, Date.now());
  }

  /** The alarm's share: expand, deliver what is due, log, re-arm. Never throws. */
  async run(room: string): Promise<void> {
    if (this.#running) return; // a forced alarm overlapping the runtime's: the running one finishes the work
    this.#running = true;
    try {
      if (Date.now() >= this.#d1NotBefore) await this.#d1Step(() => this.#expand());
      await this.#deliverDue(room);
      if (Date.now() >= this.#d1NotBefore) await this.#d1Step(() => this.#logs.flush((entries) => this.store.record(entries)));
    } catch (error) {
      console.error(`room ${room}: push queue:`, error);
    } finally {
      this.#running = false;
    }
    try {
      await this.#rearm();
    } catch (error) {
      console.error(`room ${room}: push queue could not arm the alarm:`, error);
    }
  }

  /** Runs a step that needs D1; a failure backs off expansion and logging, and never throws. */
  async #d1Step(step: () => Promise<void>): Promise<void> {
    try {
      await step();
      this.#failures = 0;
      this.#lastError = undefined;
    } catch (error) {
      this.#failures++;
      this.#lastError = error instanceof Error ? error.message : String(error);
      const delay = d1BackoffMs(this.#failures);
      this.#d1NotBefore = Date.now() + delay;
      console.error(`push queue: D1 failed (${this.#failures} in a row), retrying in ${delay} ms: ${this.#lastError}`);
    }
  }

  /** Turns queued events into jobs, one per device of each member to notify. */
  async #expand(): Promise<void> {
    const events = this.storage.sql.exec<EventRow>("SELECT seq, sender_id, payload, urgency, cursor FROM push_events ORDER BY seq LIMIT ?", EVENTS_PER_RUN).toArray();
    if (events.length === 0) return;
    const now = Date.now();
    const pages = events.map((event) => {
      const page = this.members.idsAfter(event.cursor, MEMBERS_PER_PAGE);
      const recipients = page.filter((id) => id !== event.sender_id && !this.isOnline(id, now));
      return { event, page, recipients };
    });
    const users = [...new Set(pages.flatMap((p) => p.recipients))];
    const devices = new Map<string, UserPushTarget[]>();
    for (const target of await this.store.targetsFor(users)) {
      const list = devices.get(target.userId) ?? [];
      list.push(target);
      devices.set(target.userId, list);
    }
    const at = Date.now();
    this.storage.transactionSync(() => {
      for (const { event, page, recipients } of pages) {
        for (const userId of recipients) {
          for (const device of devices.get(userId) ?? []) {
            this.storage.sql.exec(
              "INSERT INTO push_jobs (seq, user_id, endpoint, p256dh, auth, payload, urgency, next_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
              event.seq, userId, device.endpoint, device.p256dh, device.auth, event.payload, event.urgency, at,
            );
          }
        }
        if (page.length < MEMBERS_PER_PAGE) this.storage.sql.exec("DELETE FROM push_events WHERE seq = ?", event.seq);
        else this.storage.sql.exec("UPDATE push_events SET cursor = ? WHERE seq = ?", page[page.length - 1]!, event.seq);
      }
    });
  }

  async #deliverDue(room: string): Promise<void> {
    const config = pushConfigFrom(this.env);
    let vapid: VapidKeys | undefined;
    let vapidError: string | undefined;
    try {
      vapid = vapidKeysFrom(this.env);
    } catch (error) {
      vapidError = error instanceof Error ? error.message : String(error);
    }
    for (let round = 0; round < ROUNDS_PER_RUN; round++) {
      const now = Date.now();
      const jobs = this.storage.sql
        .exec<JobRow>("SELECT id, seq, user_id, endpoint, p256dh, auth, payload, urgency, attempts FROM push_jobs WHERE next_at <= ? ORDER BY next_at, id LIMIT ?", now, JOBS_PER_ROUND)
        .toArray();
      if (jobs.length === 0) return;
      // Count each attempt before making it; should this instance die mid-send, the job comes back later, one attempt spent.
      const fallback = now + config.requestTimeoutMs + config.retryBaseMs;
      this.storage.transactionSync(() => {
        for (const job of jobs) this.storage.sql.exec("UPDATE push_jobs SET attempts = attempts + 1, next_at = ? WHERE id = ?", fallback, job.id);
      });
      const outcomes = await Promise.all(
        jobs.map((job): Promise<PushOutcome> =>
          vapid
            ? sendPush(job, job.payload, { urgency: job.urgency as PushUrgency, config, vapid })
            : Promise.resolve({ kind: "failed", httpStatus: null, error: vapidError ?? "VAPID keys missing" }),
        ),
      );
      const at = Date.now();
      const entries: PushLogEntry[] = [];
      this.storage.transactionSync(() => {
        jobs.forEach((job, i) => {
          const outcome = outcomes[i]!;
          const attempt = job.attempts + 1;
          let status: PushLogEntry["status"] = outcome.kind;
          if (outcome.kind === "retry" && attempt < config.maxAttempts) {
            const backoff = config.retryBaseMs * 2 ** (attempt - 1);
            const next = at + Math.max(backoff, Math.min(outcome.retryAfterMs ?? 0, MAX_RETRY_AFTER_MS));
            this.storage.sql.exec("UPDATE push_jobs SET next_at = ? WHERE id = ?", next, job.id);
          } else {
            if (outcome.kind === "retry") status = "failed"; // the last attempt
            this.storage.sql.exec("DELETE FROM push_jobs WHERE id = ?", job.id);
          }
          entries.push({
            id: crypto.randomUUID(),
            userId: job.user_id,
            room,
            seq: job.seq,
            endpoint: job.endpoint,
            auth: job.auth,
            status,
            httpStatus: outcome.httpStatus,
            error: outcome.kind === "sent" ? null : outcome.error,
            attempt,
            at,
          });
        });
        this.#logs.add(entries);
      });
      // One device gone: forget it for the other jobs queued for it too (their pushes would only get 410 again).
      for (const gone of entries.filter((e) => e.status === "gone")) {
        this.storage.sql.exec("DELETE FROM push_jobs WHERE endpoint = ? AND auth = ?", gone.endpoint, gone.auth);
      }
    }
  }

  /** Arms the alarm for the earliest pending work (never later than an alarm already set). */
  async #rearm(): Promise<void> {
    const now = Date.now();
    const nextJob = this.storage.sql.exec<{ t: number | null }>("SELECT min(next_at) AS t FROM push_jobs").one().t;
    const { events, logs } = this.status();
    const d1Work = events + logs > 0 ? Math.max(now, this.#d1NotBefore) : Infinity;
    const next = Math.min(nextJob ?? Infinity, d1Work);
    if (next !== Infinity) await armAlarmBy(this.storage, next);
  }

}
