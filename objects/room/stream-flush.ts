/**
 * One write per stream per moment: the room's Hub and SSE streams queue what
 * they are given, and this flushes every one that has something queued in one
 * timer callback (`setTimeout(0)`), after the events of the current moment
 * have all been accepted. The Hub is flushed like a stream (its queue is the
 * room's accepted events, see hub.ts), so the SSE writes its flush causes
 * leave in the same run.
 *
 * In workerd every write to a response stream costs far more than the bytes:
 * it waits for the output gate (the event must be durable first), then
 * re-enters the isolate once to write and once to settle, then makes a
 * syscall. Publishers that call in concurrently each publish in their own
 * turn, so a per-turn flush would still write every event separately; a
 * timer fires only once the runtime has run what was ready, so under load it
 * gathers the events of every call that came in meanwhile into one write
 * per stream, and the room catches up instead of falling further behind
 * (200 streams, 10 publishers at 10 events/s each: 1 write per event per
 * stream became 0.05-0.7, depending on the backlog; a flush at the end of
 * each turn instead cost 2-3 times the CPU). A
 * quiet room (no flush in the last BUSY_MS) flushes at the end of the turn
 * instead, so a lone event does not wait for a timer.
 *
 * One flusher per room: a stream's writer belongs to its room's object, and
 * must not be written to from another object's turn.
 */
export interface Flushable {
  flush(): void;
}

/** A room that flushed this recently is busy: its next flush waits for a timer, to gather more. */
const BUSY_MS = 50;

export class StreamFlush {
  #dirty = new Set<Flushable>();
  #lastFlush = -Infinity;
  #running = false;

  /** Queues `stream` for the next flush; the first of a moment schedules it. */
  mark(stream: Flushable): void {
    if (this.#dirty.size === 0 && !this.#running) {
      if (Date.now() - this.#lastFlush < BUSY_MS) setTimeout(() => this.#run(), 0);
      else queueMicrotask(() => this.#run());
    }
    this.#dirty.add(stream);
  }

  /**
   * Flushes everything marked, including what is marked while flushing: the
   * Hub's flush hands events to the SSE streams, which then go out in the
   * same run rather than a timer later.
   */
  #run(): void {
    if (this.#dirty.size === 0) return;
    this.#lastFlush = Date.now();
    this.#running = true;
    try {
      while (this.#dirty.size > 0) {
        const streams = this.#dirty;
        this.#dirty = new Set();
        for (const stream of streams) stream.flush();
      }
    } finally {
      this.#running = false;
    }
  }
}
