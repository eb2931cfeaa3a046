/**
 * The room's fan-out: one set of subscribers of every transport, one
 * publish loop. Also the single replay path: a subscriber that arrives with a
 * resume cursor is given the events it missed (from the tail or D1) and then
 * goes live, with no gap and no repeat, whatever its transport.
 *
 * Coalesced fan-out: published events are queued and handed out in flushes
 * (StreamFlush's timing). A lone event on a quiet room is flushed at the end
 * of the turn that accepted it, so it goes out at once, as before; events
 * accepted in the same turn (a batch publish, a burst of socket frames)
 * travel together; and while the room is busy (it flushed within the last
 * few ms) the flush waits for a timer, gathering what every concurrent call
 * accepted meanwhile. Each subscriber then gets one EventRun per flush with
 * everything it has not seen, and its transport decides how many frames
 * that makes (docs/architecture.md, "Coalesced fan-out").
 */
import type { EncodedEvent } from "./encoded-event";
import type { EncodedSignal } from "./encoded-signal";
import { EventRun } from "./event-run";
import type { Presence } from "./presence";
import type { RoomHistory } from "./room-history";
import type { RoomLog } from "./room-log";
import type { Flushable, StreamFlush } from "./stream-flush";
import type { Subscriber } from "./subscriber";

/** Events read per step while replaying from D1. */
const REPLAY_PAGE = 500;

export class Hub implements Flushable {
  readonly #live = new Set<Subscriber>();
  /** Accepted, not handed out yet; in seq order. */
  #pending: EncodedEvent[] = [];
  /** Run at the next flush before its events (a batch=1 socket's acks). */
  #beforeFlush: (() => void)[] = [];

  constructor(
    private readonly log: RoomLog,
    private readonly history: RoomHistory,
    private readonly presence: Presence,
    /** The room's flusher, shared with its SSE streams (one run writes both). */
    private readonly flusher: StreamFlush,
    /** Told after subscribers come and go (the room's occupancy follows it: room-occupancy.ts). */
    private readonly changed: () => void = () => {},
  ) {}

  get size(): number {
    return this.#live.size;
  }

  subscribers(): IterableIterator<Subscriber> {
    return this.#live.values();
  }

  /**
   * Adds a subscriber. With `after`, it is first given every event with a
   * greater seq; live events accepted meanwhile are picked up by the same
   * loop, because the subscriber joins the live set only in the same
   * synchronous step that reads the last local events. `greet` runs first,
   * before any event (the WebSocket welcome frame, the SSE retry line).
   */
  async attach(subscriber: Subscriber, after: number | undefined, greet?: () => void): Promise<void> {
    if (subscriber.countsAsConnection) this.presence.connected(subscriber.user);
    greet?.();
    subscriber.cursor = Math.min(after ?? this.log.lastSeq, this.log.lastSeq);
    for (;;) {
      while (subscriber.cursor < this.log.trimmedSeq) {
        const page = await this.history.after(subscriber.cursor, REPLAY_PAGE);
        const step = this.#deliverAll(subscriber, page);
        if (step === false) return this.#drop(subscriber);
        if (step !== true && !(await this.#waited(subscriber, step))) return this.#drop(subscriber);
      }
      // Everything left is local: read it and go live without yielding, unless the
      // subscriber asks to wait for its client (then read on from the cursor afterwards).
      let wait: Promise<void> | undefined;
      for (;;) {
        const page = this.log.readAfter(subscriber.cursor, REPLAY_PAGE);
        if (page.length === 0) break;
        const step = this.#deliverAll(subscriber, page);
        if (step === false) return this.#drop(subscriber);
        if (step !== true) {
          wait = step;
          break;
        }
      }
      if (!wait) break;
      if (!(await this.#waited(subscriber, wait))) return this.#drop(subscriber);
    }
    this.#live.add(subscriber);
    this.changed();
  }

  /** Adds a subscriber known to be up to date (a WebSocket woken from hibernation). */
  restore(subscriber: Subscriber): void {
    subscriber.cursor = this.log.lastSeq;
    this.#live.add(subscriber);
    if (subscriber.countsAsConnection) this.presence.restored(subscriber.user);
    this.changed();
  }

  /** Removes a subscriber (its connection closed, or it finished). */
  detach(subscriber: Subscriber): void {
    if (!this.#live.delete(subscriber)) return;
    if (subscriber.countsAsConnection) this.presence.disconnected(subscriber.user);
    this.changed();
  }

  /** Queues a newly accepted event for every live subscriber; the next flush hands it out. */
  publish(event: EncodedEvent): void {
    if (this.#pending.push(event) === 1) this.flusher.mark(this);
  }

  /**
   * Runs `task` at the next flush, before its events: a `batch=1` socket's
   * acks ride the same flush as the events they acknowledge, so the sends
   * accepted while the room is busy are answered together.
   */
  beforeNextFlush(task: () => void): void {
    this.#beforeFlush.push(task);
    this.flusher.mark(this);
  }

  /**
   * Runs the queued tasks (acks), then hands every queued event to every
   * live subscriber: each gets one run of what it has not seen. Runs are shared by the subscribers that start at
   * the same event, so their frames are built once.
   */
  flush(): void {
    const tasks = this.#beforeFlush;
    if (tasks.length > 0) {
      this.#beforeFlush = [];
      for (const task of tasks) task();
    }
    const events = this.#pending;
    if (events.length === 0) return;
    this.#pending = [];
    const runs = new Map<number, EventRun>();
    for (const subscriber of this.#live) {
      const start = firstAfter(events, subscriber.cursor);
      if (start === events.length) continue;
      let run = runs.get(start);
      if (!run) runs.set(start, (run = new EventRun(start === 0 ? events : events.slice(start))));
      subscriber.cursor = run.lastSeq;
      if (!subscriber.deliver(run)) this.detach(subscriber);
    }
  }

  /** Gives an ephemeral signal to every live subscriber but the excluded user, after the events queued before it. */
  signal(signal: EncodedSignal): void {
    this.flush();
    for (const subscriber of this.#live) {
      if (subscriber.user.id !== signal.exceptUserId) subscriber.signal(signal);
    }
  }

  /**
   * Replays `events` past the cursor. false: the subscriber is done. A
   * promise: it asked to wait for its client before taking more (the rest is
   * read again from the cursor). true: all given.
   */
  #deliverAll(subscriber: Subscriber, events: EncodedEvent[]): boolean | Promise<void> {
    const start = firstAfter(events, subscriber.cursor);
    if (start === events.length) return true;
    // One frame at a time, so a replay that must wait for its client stops within a frame of the point.
    const rest = events.slice(start);
    const runs = subscriber.coalesces ? new EventRun(rest).chunks() : rest.map((event) => new EventRun([event]));
    for (const run of runs) {
      subscriber.cursor = run.lastSeq;
      if (!subscriber.deliver(run)) return false;
      const wait = subscriber.drained?.();
      if (wait) return wait;
    }
    return true;
  }

  /** Waits for a replaying subscriber's client; false if it ended meanwhile. */
  async #waited(subscriber: Subscriber, wait: Promise<void>): Promise<boolean> {
    await wait;
    return !subscriber.closed;
  }

  #drop(subscriber: Subscriber): void {
    if (subscriber.countsAsConnection) this.presence.disconnected(subscriber.user);
    this.changed();
  }
}

/** The index of the first event with a seq beyond `cursor` (events are in seq order; live subscribers are almost always at 0). */
function firstAfter(events: readonly EncodedEvent[], cursor: number): number {
  let i = 0;
  while (i < events.length && events[i]!.seq <= cursor) i++;
  return i;
}
