/**
 * Webhooks to the app's backend (SPEC §11), as a durable queue in the
 * object's own SQLite storage, drained by the room's alarm: the same
 * pattern as the push queue (push-queue.ts).
 *
 * The send path only records: `enqueue` inserts one `webhook_events` row,
 * synchronously, in the same turn (and so the same storage commit) as the
 * step that produced the event, with the event's `id` (a uuid, the same on
 * every retry). Everything else happens behind the response:
 *
 *  - **Per receiver progress.** Each URL of WEBHOOK_URLS is a row of
 *    `webhook_targets` with the id of the last event it has. Each URL gets
 *    every event, in order, one call in flight at a time; an event row is
 *    deleted once every URL has it.
 *  - **Batches.** A quiet room's first event waits `batchDelayMs` (1 s) for
 *    company; a call carries up to 100 events; what queues while a call is
 *    in flight leaves in the next one, at once.
 *  - **Retries.** The attempt is counted before the call is made, so a crash
 *    mid-call cannot grant extra attempts, and the alarm is armed for the
 *    retry. 2xx: done. 429, 5xx, a network error or a timeout: the same
 *    events again after `retryBaseMs × 2^(attempt-1)` (capped at 5 min),
 *    for `retryForMs` (1 h); past that, what is pending for that URL is
 *    dropped and counted. Any other answer (a 4xx, a redirect): that batch
 *    is dropped and counted, the next one goes.
 *  - **Cap.** Past `maxPending` events the oldest are dropped, and counted
 *    for every URL that did not have them yet.
 *  - **Log.** Every attempt goes to D1's webhook_logs through
 *    AttemptLogOutbox.
 *
 * Calls are not awaited by the alarm: a receiver that takes seconds delays
 * neither the D1 flush nor push (nor any send). Should the instance go
 * away mid-call, the attempt's alarm retries it.
 */
import type { Envelope } from "../../protocol/envelope";
import { userIdOfChannel } from "../../protocol/pusher";
import type { Env } from "../../server/env";
import { pushConfigFrom } from "../../server/push/config";
import { redactUrl, webhookConfigFrom, type WebhookConfig } from "../../server/webhooks/config";
import { armAlarmBy, d1BackoffMs } from "./room-alarm";
import { clientEventFromFrame, messageEvent, webhookBody, webhookSignature, type WebhookEventInput } from "../../server/webhooks/format";
import { postWebhook, type WebhookOutcome } from "../../server/webhooks/sender";
import { WebhookLogStore, type WebhookLogEntry } from "../../server/webhooks/store";
import { AttemptLogOutbox } from "./attempt-log-outbox";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS webhook_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS webhook_targets (
  url TEXT PRIMARY KEY,
  delivered INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_at INTEGER NOT NULL DEFAULT 0,
  failing_since INTEGER,
  dropped INTEGER NOT NULL DEFAULT 0,
  last_error TEXT
) WITHOUT ROWID;
`;

/** Backoff for D1 failures while logging. */

type TargetRow = { url: string; delivered: number; attempts: number; next_at: number; failing_since: number | null; dropped: number; last_error: string | null };

export interface WebhookTargetStatus {
  /** The URL without its query. */
  url: string;
  /** Events this URL has still to get. */
  pending: number;
  /** Failed attempts at its current batch (0 when it is up to date or has not failed). */
  attempts: number;
  nextAttemptAt?: string;
  lastError?: string;
  /** Events this URL will never get: dropped by the cap, or given up after failing for retryForMs, or refused with a 4xx. */
  dropped: number;
}

export interface WebhookQueueStatus {
  /** WEBHOOK_URLS is set. */
  enabled: boolean;
  /** Why nothing is delivered (a missing secret, a refused URL): events wait, capped. */
  configError?: string;
  /** Events not yet delivered to every URL. */
  pending: number;
  maxPending: number;
  /** Events dropped, summed over URLs (see WebhookTargetStatus.dropped). */
  dropped: number;
  /** Attempts not yet in D1's webhook_logs. */
  logs: number;
  targets: WebhookTargetStatus[];
}

/** Problems logged by this isolate (a configuration error is logged once, not per room or per event). */
const loggedProblems = new Set<string>();

export class WebhookQueue {
  readonly #config: WebhookConfig;
  readonly #allowInsecure: boolean;
  readonly #logs: AttemptLogOutbox<WebhookLogEntry>;
  readonly #store: WebhookLogStore;
  readonly #inFlight = new Set<string>();
  /** Rows in webhook_events (kept here: the cap is checked on every enqueue). */
  #pending: number;
  /** The alarm time this instance asked for, while it has not fired (saves a getAlarm per event). */
  #armedFor?: number;
  #d1NotBefore = 0;
  #d1Failures = 0;

  constructor(
    private readonly storage: DurableObjectStorage,
    env: Env,
    /** The room's name (the events' `channel`), known once any call has named the room. */
    private readonly roomName: () => string | undefined,
  ) {
    this.#config = webhookConfigFrom(env);
    this.#allowInsecure = pushConfigFrom(env).allowInsecureEndpoints;
    this.#store = new WebhookLogStore(env.DB);
    storage.sql.exec(SCHEMA);
    this.#logs = new AttemptLogOutbox<WebhookLogEntry>(storage.sql, "webhook_log_outbox");
    this.#syncTargets();
    this.#pending = this.#count();
  }

  /** Whether events of this kind are sent at all (callers skip the work of building them otherwise). */
  wants(name: WebhookEventInput["name"]): boolean {
    return this.#config.urls.length > 0 && this.#config.events.has(name);
  }

  /**
   * Queues an event, in the caller's turn: one insert, no await, no
   * network, never throws. Past the cap, the oldest events are dropped.
   */
  enqueue(input: WebhookEventInput, now = Date.now()): void {
    if (!this.wants(input.name)) return;
    // A user's server-to-user room (#server-to-user-<id>) is the service's index of that user's connections, not a channel the app sees.
    if (userIdOfChannel(input.channel) !== undefined) return;
    try {
      this.storage.sql.exec("INSERT INTO webhook_events (json) VALUES (?)", JSON.stringify({ id: crypto.randomUUID(), ...input }));
      this.#pending++;
      if (this.#pending > this.#config.maxPending) this.#dropOldest(this.#pending - this.#config.maxPending);
      this.#reportProblem();
      if (!this.#config.problem) this.#armBy(now + this.#config.batchDelayMs);
    } catch (error) {
      console.error(`room ${input.channel}: webhook ${input.name} not queued:`, error);
    }
  }

  /** `message`: an event accepted into the room's log (opt-in through WEBHOOK_EVENTS). */
  message(envelope: Envelope, now: number): void {
    if (this.wants("message")) this.enqueue(messageEvent(envelope), now);
  }

  /** `client_event`: a Pusher client event the room relayed, from its frame as the hub built it. */
  clientEvent(channel: string, socketId: string, frame: string): void {
    if (this.wants("client_event")) this.enqueue(clientEventFromFrame(channel, socketId, frame));
  }

  /** `cache_miss`: a subscriber of a cache channel found no event to be given. */
  cacheMiss(channel: string): void {
    this.enqueue({ name: "cache_miss", channel });
  }

  /** Asks the alarm to come by `time` (used by the room's occupancy checks too). */
  wakeBy(time: number): void {
    this.#armBy(time);
  }

  status(): WebhookQueueStatus {
    const targets = this.#targets().map((row): WebhookTargetStatus => ({
      url: redactUrl(row.url),
      pending: this.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM webhook_events WHERE id > ?", row.delivered).one().n,
      attempts: row.attempts,
      ...(row.attempts > 0 && row.next_at > 0 ? { nextAttemptAt: new Date(row.next_at).toISOString() } : {}),
      ...(row.last_error ? { lastError: row.last_error } : {}),
      dropped: row.dropped,
    }));
    return {
      enabled: this.#config.urls.length > 0,
      ...(this.#config.problem ? { configError: this.#config.problem } : {}),
      pending: this.#pending,
      maxPending: this.#config.maxPending,
      dropped: targets.reduce((sum, target) => sum + target.dropped, 0),
      logs: this.#logs.pending,
      targets,
    };
  }

  /** On wake: pending work with no alarm to do it gets one. */
  async load(): Promise<void> {
    this.#reportProblem();
    if ((this.#pending > 0 && !this.#config.problem) || this.#logs.pending > 0) await armAlarmBy(this.storage, Date.now());
  }

  /** The alarm's share: start the calls that are due (not awaited), write the log, re-arm. Never throws. */
  async run(): Promise<void> {
    this.#armedFor = undefined;
    const room = this.roomName();
    if (!room) return;
    try {
      this.#startDue(room);
      if (this.#logs.pending > 0 && Date.now() >= this.#d1NotBefore) await this.#flushLogs(room);
      await this.#rearm();
    } catch (error) {
      console.error(`room ${room}: webhook queue:`, error);
    }
  }

  #startDue(room: string): void {
    if (this.#config.problem || !this.#config.credentials) return;
    const now = Date.now();
    for (const target of this.#targets()) {
      if (this.#inFlight.has(target.url) || target.next_at > now || !this.#hasEventsAfter(target.delivered)) continue;
      void this.#deliver(room, target.url);
    }
  }

  /** Calls one URL until it is up to date or a call fails; one call in flight per URL. */
  async #deliver(room: string, url: string): Promise<void> {
    this.#inFlight.add(url);
    try {
      for (;;) {
        const target = this.#target(url);
        if (!target) return;
        const rows = this.storage.sql
          .exec<{ id: number; json: string }>("SELECT id, json FROM webhook_events WHERE id > ? ORDER BY id LIMIT ?", target.delivered, this.#config.maxBatch)
          .toArray();
        if (rows.length === 0) return;
        const attempt = target.attempts + 1;
        // Counted before it is made; should this instance die mid-call, the alarm comes back for it.
        const fallback = Date.now() + this.#config.requestTimeoutMs + this.#retryDelay(attempt);
        this.storage.sql.exec("UPDATE webhook_targets SET attempts = ?, next_at = ? WHERE url = ?", attempt, fallback, url);
        await armAlarmBy(this.storage, fallback);
        const outcome = await this.#call(url, rows.map((row) => row.json));
        const settled = this.#settle(room, url, rows, attempt, outcome);
        if (!settled) return;
      }
    } catch (error) {
      console.error(`room ${room}: webhook delivery to ${redactUrl(url)}:`, error);
    } finally {
      this.#inFlight.delete(url);
      await this.#rearm().catch((error) => console.error(`room ${room}: webhook queue could not arm the alarm:`, error));
    }
  }

  async #call(url: string, events: string[]): Promise<WebhookOutcome> {
    const { key, secret } = this.#config.credentials!;
    const body = webhookBody(Date.now(), events);
    const signature = await webhookSignature(body, secret);
    return postWebhook({ url, body, key, signature, allowInsecure: this.#allowInsecure, timeoutMs: this.#config.requestTimeoutMs });
  }

  /** Records an attempt's outcome in one transaction; true when the URL may go on with its next batch now. */
  #settle(room: string, url: string, rows: { id: number; json: string }[], attempt: number, outcome: WebhookOutcome): boolean {
    const at = Date.now();
    const lastId = rows[rows.length - 1]!.id;
    const entry: WebhookLogEntry = {
      id: crypto.randomUUID(),
      room,
      url: redactUrl(url),
      firstEvent: (JSON.parse(rows[0]!.json) as { id: string }).id,
      events: rows.length,
      status: outcome.kind,
      httpStatus: outcome.httpStatus,
      error: outcome.kind === "sent" ? null : outcome.error,
      attempt,
      at,
    };
    let goOn = true;
    this.storage.transactionSync(() => {
      const target = this.#target(url);
      if (!target) return;
      if (outcome.kind === "sent") {
        this.storage.sql.exec(
          "UPDATE webhook_targets SET delivered = max(delivered, ?), attempts = 0, next_at = 0, failing_since = NULL, last_error = NULL WHERE url = ?",
          lastId, url,
        );
      } else if (outcome.kind === "failed") {
        // Retrying cannot help this batch; the next one may fare better (it is logged, and counted).
        this.#dropFor(url, target.delivered, lastId);
        this.storage.sql.exec("UPDATE webhook_targets SET attempts = 0, next_at = 0, failing_since = NULL, last_error = ? WHERE url = ?", outcome.error, url);
      } else {
        const since = target.failing_since ?? at;
        if (at - since >= this.#config.retryForMs && attempt >= 2) {
          const last = this.storage.sql.exec<{ id: number | null }>("SELECT max(id) AS id FROM webhook_events").one().id ?? lastId;
          const dropped = this.#dropFor(url, target.delivered, last);
          entry.status = "dropped";
          entry.error = `${outcome.error}; gave up after ${attempt} attempts over ${Math.round((at - since) / 60_000)} min, dropped ${dropped} events`;
          this.storage.sql.exec("UPDATE webhook_targets SET attempts = 0, next_at = 0, failing_since = NULL, last_error = ? WHERE url = ?", entry.error, url);
          console.error(`room ${room}: webhooks to ${redactUrl(url)}: ${entry.error}`);
        } else {
          const next = at + this.#retryDelay(attempt);
          this.storage.sql.exec("UPDATE webhook_targets SET next_at = ?, failing_since = ?, last_error = ? WHERE url = ?", next, since, outcome.error, url);
          goOn = false;
        }
      }
      this.#deleteDelivered();
      this.#logs.add([entry]);
    });
    if (outcome.kind !== "sent") console.warn(`room ${room}: webhook call ${attempt} to ${redactUrl(url)} (${rows.length} events): ${entry.error}`);
    return goOn;
  }

  /** Marks events (after, upTo] as never to be delivered to `url`; returns how many that was. */
  #dropFor(url: string, after: number, upTo: number): number {
    const n = this.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM webhook_events WHERE id > ? AND id <= ?", after, upTo).one().n;
    this.storage.sql.exec("UPDATE webhook_targets SET delivered = max(delivered, ?), dropped = dropped + ? WHERE url = ?", upTo, n, url);
    return n;
  }

  /** The cap: drops the `count` oldest events, counted for each URL that did not have them yet. */
  #dropOldest(count: number): void {
    const upTo = this.storage.sql.exec<{ id: number | null }>("SELECT max(id) AS id FROM (SELECT id FROM webhook_events ORDER BY id LIMIT ?)", count).one().id;
    if (upTo === null) return;
    for (const target of this.#targets()) {
      if (target.delivered < upTo) this.#dropFor(target.url, target.delivered, upTo);
    }
    this.storage.sql.exec("DELETE FROM webhook_events WHERE id <= ?", upTo);
    this.#pending = this.#count();
  }

  /** Deletes the events every URL has. */
  #deleteDelivered(): void {
    const floor = this.storage.sql.exec<{ d: number | null }>("SELECT min(delivered) AS d FROM webhook_targets").one().d;
    this.storage.sql.exec("DELETE FROM webhook_events WHERE id <= ?", floor ?? Number.MAX_SAFE_INTEGER);
    this.#pending = this.#count();
  }

  #retryDelay(attempt: number): number {
    return Math.min(this.#config.maxRetryDelayMs, this.#config.retryBaseMs * 2 ** (attempt - 1));
  }

  async #flushLogs(room: string): Promise<void> {
    try {
      await this.#logs.flush((entries) => this.#store.record(entries));
      this.#d1Failures = 0;
    } catch (error) {
      this.#d1Failures++;
      const delay = d1BackoffMs(this.#d1Failures);
      this.#d1NotBefore = Date.now() + delay;
      console.error(`room ${room}: webhook_logs write failed (${this.#d1Failures} in a row), retrying in ${delay} ms:`, error);
    }
  }

  /** Arms the alarm for the earliest due work: a URL's next call, or the log's write. */
  async #rearm(): Promise<void> {
    let next = this.#logs.pending > 0 ? Math.max(Date.now(), this.#d1NotBefore) : Infinity;
    if (!this.#config.problem) {
      for (const target of this.#targets()) {
        if (this.#inFlight.has(target.url) || !this.#hasEventsAfter(target.delivered)) continue;
        next = Math.min(next, Math.max(target.next_at, Date.now()));
      }
    }
    if (next !== Infinity) await armAlarmBy(this.storage, next);
  }

  /** Without waiting (the send path): asks for the alarm by `time` unless this instance already did. */
  #armBy(time: number): void {
    if (this.#armedFor !== undefined && this.#armedFor <= time) return;
    this.#armedFor = time;
    void armAlarmBy(this.storage, time).catch((error) => console.error("webhook queue could not arm the alarm:", error));
  }


  /** Targets follow WEBHOOK_URLS: new URLs start with what is pending, removed ones are forgotten. */
  #syncTargets(): void {
    const urls = this.#config.urls;
    for (const row of this.#targets()) {
      if (!urls.includes(row.url)) this.storage.sql.exec("DELETE FROM webhook_targets WHERE url = ?", row.url);
    }
    for (const url of urls) this.storage.sql.exec("INSERT OR IGNORE INTO webhook_targets (url) VALUES (?)", url);
    if (urls.length === 0) this.storage.sql.exec("DELETE FROM webhook_events");
    else this.#deleteDelivered();
  }

  #reportProblem(): void {
    const problem = this.#config.problem;
    if (!problem || loggedProblems.has(problem)) return;
    loggedProblems.add(problem);
    console.error(`webhooks are not delivered, events wait (up to WEBHOOK_MAX_PENDING per room): ${problem}`);
  }

  #targets(): TargetRow[] {
    return this.storage.sql.exec<TargetRow>("SELECT url, delivered, attempts, next_at, failing_since, dropped, last_error FROM webhook_targets ORDER BY url").toArray();
  }

  #target(url: string): TargetRow | undefined {
    return this.storage.sql.exec<TargetRow>("SELECT url, delivered, attempts, next_at, failing_since, dropped, last_error FROM webhook_targets WHERE url = ?", url).toArray()[0];
  }

  #hasEventsAfter(id: number): boolean {
    return this.storage.sql.exec("SELECT 1 FROM webhook_events WHERE id > ? LIMIT 1", id).toArray().length > 0;
  }

  #count(): number {
    return this.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM webhook_events").one().n;
  }
}
