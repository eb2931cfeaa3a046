/**
 * A held long-poll request as a subscriber. It collects the events that
 * arrive in one turn (up to `limit`), then answers once and leaves; a
 * timeout answers with nothing, and an aborted request just leaves.
 * No timer ever polls storage: the Hub wakes it in the same fan-out that
 * feeds the WebSockets.
 */
import type { UserRef } from "../../protocol/envelope";
import type { EncodedEvent } from "./encoded-event";
import type { EventRun } from "./event-run";
import type { Subscriber } from "./subscriber";

export class LongPollSubscriber implements Subscriber {
  readonly kind = "longpoll";
  /** Presence counts pollers by time, not by held request (see Presence.polled). */
  readonly countsAsConnection = false;
  cursor = 0;
  readonly #events: EncodedEvent[] = [];
  #done = false;
  readonly #timer: ReturnType<typeof setTimeout>;
  #resolve!: (events: EncodedEvent[]) => void;
  /** Resolves with the events to answer with ([] on timeout or abort). */
  readonly answer: Promise<EncodedEvent[]>;

  constructor(
    readonly user: UserRef,
    private readonly limit: number,
    waitMs: number,
    /** Called once when the poll has answered, so the Hub can drop it. */
    private readonly onDone: (subscriber: LongPollSubscriber) => void,
    signal?: AbortSignal,
  ) {
    this.answer = new Promise((resolve) => (this.#resolve = resolve));
    this.#timer = setTimeout(() => this.#finish(), waitMs);
    signal?.addEventListener("abort", () => this.#finish(), { once: true });
  }

  deliver(run: EventRun): boolean {
    if (this.#done) return false;
    const first = this.#events.length === 0;
    for (const event of run.events) {
      this.#events.push(event);
      if (this.#events.length >= this.limit) {
        this.#finish();
        return false;
      }
    }
    // Answer at the end of this turn, so events published together travel together.
    if (first) queueMicrotask(() => this.#finish());
    return true;
  }

  signal(): void {
    // Long-poll carries the log only; signals are for streaming transports.
  }

  close(): void {
    this.#finish();
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    clearTimeout(this.#timer);
    this.#resolve(this.#events);
    this.onDone(this);
  }
}
