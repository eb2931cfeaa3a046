/**
 * The room's fan-out: one set of subscribers of every transport, one
 * publish loop. Also the single replay path: a subscriber that arrives with a
 * resume cursor is given the events it missed (from the tail or D1) and then
 * goes live, with no gap and no repeat, whatever its transport.
 */
import type { EncodedEvent } from "./encoded-event";
import type { EncodedSignal } from "./encoded-signal";
import type { Presence } from "./presence";
import type { RoomHistory } from "./room-history";
import type { RoomLog } from "./room-log";
import type { Subscriber } from "./subscriber";

/** Events read per step while replaying from D1. */
const REPLAY_PAGE = 500;

export class Hub {
  readonly #live = new Set<Subscriber>();

  constructor(
    private readonly log: RoomLog,
    private readonly history: RoomHistory,
    private readonly presence: Presence,
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

  /** Gives a newly accepted event to every live subscriber. */
  publish(event: EncodedEvent): void {
    for (const subscriber of this.#live) {
      if (subscriber.cursor >= event.seq) continue;
      subscriber.cursor = event.seq;
      if (!subscriber.deliver(event)) this.detach(subscriber);
    }
  }

  /** Gives an ephemeral signal to every live subscriber but the excluded user. */
  signal(signal: EncodedSignal): void {
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
    for (const event of events) {
      if (event.seq <= subscriber.cursor) continue;
      subscriber.cursor = event.seq;
      if (!subscriber.deliver(event)) return false;
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
