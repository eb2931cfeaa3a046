/**
 * Bookkeeping for "every subscriber gets every event, once, in order": each
 * event carries its index in `data.i`; each connection records the first
 * arrival of each index (its latency from the event's send time), counts
 * repeats as duplicates, and counts an event whose seq is not above the last
 * seq that connection saw as out of order.
 */
import type { SeriesRun } from "./scenario.ts";
import type { Delivery } from "./targets.ts";

export class DeliveryTracker {
  /** One sample per first arrival, ms from the event's send time. */
  readonly latenciesMs: number[] = [];
  delivered = 0;
  duplicates = 0;
  outOfOrder = 0;
  /** Messages that carried no index of this run (should be 0). */
  strays = 0;
  readonly #seen: Uint8Array[];
  readonly #lastSeq: number[];
  #waiter?: { count: number; done: () => void };

  /** `sentAt[i]`: performance.now() just before event i was handed to the transport (NaN until then). */
  constructor(
    readonly subscribers: number,
    /** The most events the run may send (see `sentOnly`). */
    public events: number,
    readonly sentAt: Float64Array,
  ) {
    this.#seen = Array.from({ length: subscribers }, () => new Uint8Array(events));
    this.#lastSeq = new Array<number>(subscribers).fill(0);
  }

  get expected(): number {
    return this.subscribers * this.events;
  }

  /** The run stopped sending after `count` events (a time-bounded run): only those are expected. */
  sentOnly(count: number): void {
    this.events = Math.min(this.events, count);
  }

  /** The onMessage handler for subscriber `sub` (whose welcome said the room was at `welcomeSeq`). */
  handler(sub: number, welcomeSeq = 0): (delivery: Delivery, at: number) => void {
    this.#lastSeq[sub] = welcomeSeq;
    const seen = this.#seen[sub]!;
    return (delivery, at) => {
      const i = delivery.data?.i;
      if (typeof i !== "number" || i < 0 || i >= this.events) return void this.strays++;
      if (delivery.seq <= this.#lastSeq[sub]!) this.outOfOrder++;
      else this.#lastSeq[sub] = delivery.seq;
      if (seen[i]) return void this.duplicates++;
      seen[i] = 1;
      this.latenciesMs.push(at - this.sentAt[i]!);
      if (++this.delivered >= (this.#waiter?.count ?? Infinity)) this.#waiter!.done();
    };
  }

  /** This run's figures for the report: what was delivered, and `extra` figures beside them. */
  run(extra: Record<string, number>, latenciesMs: number[] = this.latenciesMs): SeriesRun {
    return { latenciesMs, expected: this.expected, delivered: this.delivered, duplicates: this.duplicates, outOfOrder: this.outOfOrder, extra };
  }

  /** Resolves true when every subscriber has every event, false at the timeout or abort. */
  whenComplete(timeoutMs: number, signal: AbortSignal): Promise<boolean> {
    return this.whenDelivered(this.expected, timeoutMs, signal);
  }

  /** Resolves true once `count` first arrivals have been recorded, false at the timeout or abort. One waiter at a time. */
  whenDelivered(count: number, timeoutMs: number, signal: AbortSignal): Promise<boolean> {
    if (this.delivered >= count) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (value: boolean) => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        this.#waiter = undefined;
        resolve(value);
      };
      const onAbort = () => done(false);
      const timer = setTimeout(() => done(false), timeoutMs);
      signal.addEventListener("abort", onAbort, { once: true });
      this.#waiter = { count, done: () => done(true) };
    });
  }
}
