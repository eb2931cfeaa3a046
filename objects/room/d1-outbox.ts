/**
 * Moves accepted events from the room's own storage to D1, in batches,
 * behind the response. Driven by the object's alarm: the first event after a
 * quiet spell schedules a flush `flushDelayMs` later, and everything accepted
 * until then travels in one D1 round trip. Under steady traffic (a flush
 * wrote in the last `LOAD_DELAY_FACTOR × flushDelayMs`), the next flush waits
 * for a full batch, or that longer delay (1 s by default), whichever comes
 * first: at 100 events/s a flush every 100 ms carried about 10 events per
 * round trip, now about 100; at thousands per second, full batches of 500.
 * D1 then lags the room by up to a second under load (it is not on any
 * response path: history older than the tail and unread counts read it).
 * A failed flush is retried with exponential backoff; since events leave
 * local storage only after D1 holds them, an outage delays persistence but
 * never loses an event, and the idempotent insert means a retry never
 * stores one twice.
 */
import type { RoomConfig } from "../../server/config";
import { fail } from "./room-api";
import type { D1Store } from "./d1-store";
import type { RoomLog } from "./room-log";
import type { RoomMembers } from "./room-members";
import { d1BackoffMs, MAX_D1_BACKOFF_MS } from "./room-alarm";

/** Events (and member changes) per D1 round trip. */
const BATCH_EVENTS = 500;
/** Batches per alarm run before yielding (the alarm re-arms at once). */
const BATCHES_PER_RUN = 10;
/** Under load, a flush waits for a full batch… */
const LOAD_BATCH_EVENTS = BATCH_EVENTS;
/** …for at most this many flush delays (1 s with the default 100 ms). */
const LOAD_DELAY_FACTOR = 10;

export interface OutboxStatus {
  pending: number;
  pendingMembers: number;
  flushedSeq: number;
  consecutiveFailures: number;
  lastError?: string;
  /** OUTBOX_MAX_PENDING (0: no cap). */
  maxPending: number;
  /** True while new events are refused because `pending` reached `maxPending`. */
  full: boolean;
  /**
   * Since this instance started (they restart at 0 after an eviction): D1
   * round trips (successful batches), the statements they carried, and the
   * events they wrote. What the benchmark reads as "events per D1 round trip".
   */
  d1Batches: number;
  d1Statements: number;
  d1Events: number;
}

export class D1Outbox {
  #alarmScheduled = false;
  #failures = 0;
  #lastError?: string;
  /** When the alarm will next try to flush (for Retry-After while full). */
  #nextAttemptAt = 0;
  #full = false;
  #batches = 0;
  #statements = 0;
  #flushedEvents = 0;
  /** When a flush last wrote to D1: recent means the room is under load. */
  #lastFlushAt = -Infinity;
  /** The pending alarm was already brought forward for a full batch. */
  #pulledIn = false;

  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly log: RoomLog,
    private readonly members: RoomMembers,
    private readonly d1: D1Store,
    private readonly config: RoomConfig,
  ) {}

  /** Learns whether an alarm survived hibernation, so schedule() won't push it back. */
  async load(): Promise<void> {
    // An alarm set further out than a flush (a push retry's, or a backoff) must not hold back new events' flush.
    const alarm = await this.storage.getAlarm();
    this.#nextAttemptAt = alarm ?? 0;
    this.#alarmScheduled = alarm !== null && alarm <= Date.now() + this.config.flushDelayMs;
    // Unflushed events with no alarm to flush them (a lost or abandoned alarm): flush on wake, not on the next send.
    if (!this.#alarmScheduled && (this.log.unflushedCount > 0 || this.members.unflushedCount > 0)) this.#armAt(Date.now());
  }

  /** Called after each accepted event or member change. Never waits for D1, and sets the alarm at most twice per flush. */
  schedule(now: number): void {
    if (!this.#alarmScheduled) {
      this.#armAt(now + (now - this.#lastFlushAt < this.#loadDelayMs ? this.#loadDelayMs : this.config.flushDelayMs));
      return;
    }
    // A full batch is waiting: flush it now rather than at the load delay (not while backing off from D1 failures).
    if (!this.#pulledIn && this.#failures === 0 && this.log.unflushedCount >= LOAD_BATCH_EVENTS && this.#nextAttemptAt > now) {
      this.#armAt(now, true);
    }
  }

  get #loadDelayMs(): number {
    return this.config.flushDelayMs * LOAD_DELAY_FACTOR;
  }

  status(): OutboxStatus {
    return {
      pending: this.log.unflushedCount,
      pendingMembers: this.members.unflushedCount,
      flushedSeq: this.log.flushedSeq,
      consecutiveFailures: this.#failures,
      ...(this.#lastError ? { lastError: this.#lastError } : {}),
      maxPending: this.config.outboxMaxPending,
      full: this.#isFull(),
      d1Batches: this.#batches,
      d1Statements: this.#statements,
      d1Events: this.#flushedEvents,
    };
  }

  /**
   * Backpressure for a long D1 outage: once `outboxMaxPending` events wait
   * for D1, new events are refused with `unavailable` (503 and Retry-After:
   * the time to the next flush attempt) instead of growing the object's
   * storage without bound. Retries of accepted events are answered before
   * this check. Entering and leaving that state is logged once each.
   */
  refuseWhenFull(now: number): ReturnType<typeof fail> | undefined {
    if (!this.#noteFull()) return undefined;
    const pending = this.log.unflushedCount;
    const retryAfter = Math.min(MAX_D1_BACKOFF_MS / 1000, Math.max(1, Math.ceil((this.#nextAttemptAt - now) / 1000)));
    return fail("unavailable", `the room cannot store more events until its database catches up (${pending} waiting); retry in ${retryAfter} s`, retryAfter);
  }

  /** The alarm's work: flush what is pending, then trim the local tail. */
  async flush(): Promise<void> {
    this.#alarmScheduled = false;
    const room = this.log.room;
    if (!room) return;
    for (let run = 0; run < BATCHES_PER_RUN; run++) {
      const events = this.log.unflushed(BATCH_EVENTS);
      const members = this.members.unflushed(BATCH_EVENTS);
      if (events.length === 0 && members.length === 0) break;
      try {
        this.#statements += await this.d1.write(room, events, members);
      } catch (error) {
        this.#retryLater(room, error);
        return;
      }
      this.#failures = 0;
      this.#lastError = undefined;
      this.#batches++;
      this.#flushedEvents += events.length;
      const last = events[events.length - 1];
      if (last) this.log.markFlushed(last.seq);
      this.members.markFlushed(members);
      this.#lastFlushAt = Date.now();
      // Only a backlog (a full batch) goes on at once; what arrived during the write waits to fill a batch
      // (measured: going on regardless sent the few events of each write's duration in a round trip of their own).
      if (events.length < BATCH_EVENTS && members.length < BATCH_EVENTS) break;
    }
    this.#noteFull();
    const now = Date.now();
    this.log.trim(this.config.tailEvents, now - this.config.tailSeconds * 1000);
    // More arrived while we awaited D1, or the run yielded: go again, at once for a full batch, else when one has gathered.
    const pending = this.log.unflushedCount;
    if (pending === 0 && this.members.unflushedCount === 0) return;
    this.#armAt(now + (pending >= LOAD_BATCH_EVENTS ? this.config.flushDelayMs : this.#loadDelayMs));
  }

  #retryLater(room: string, error: unknown): void {
    this.#failures++;
    this.#lastError = error instanceof Error ? error.message : String(error);
    const delay = d1BackoffMs(this.#failures);
    console.error(
      `room ${room}: D1 flush failed (${this.#failures} in a row, ${this.log.unflushedCount} events waiting), retrying in ${delay} ms: ${this.#lastError}`,
    );
    this.#armAt(Date.now() + delay);
  }

  #isFull(): boolean {
    const max = this.config.outboxMaxPending;
    return max > 0 && this.log.unflushedCount >= max;
  }

  /** Whether the outbox is full now; logs each change of that state once. */
  #noteFull(): boolean {
    const full = this.#isFull();
    if (full !== this.#full) {
      const counts = `${this.log.unflushedCount} events waiting, OUTBOX_MAX_PENDING ${this.config.outboxMaxPending}`;
      if (full) console.error(`room ${this.log.room}: D1 outbox full (${counts}): refusing new events until D1 catches up`);
      else console.info(`room ${this.log.room}: D1 outbox has room again (${counts}): accepting new events`);
      this.#full = full;
    }
    return full;
  }

  #armAt(time: number, pulledIn = false): void {
    this.#alarmScheduled = true;
    this.#pulledIn = pulledIn;
    this.#nextAttemptAt = time;
    void this.storage.setAlarm(time);
  }
}
