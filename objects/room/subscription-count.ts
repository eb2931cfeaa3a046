/**
 * `pusher_internal:subscription_count` for one channel, throttled as Pusher
 * throttles it: the first change is sent at once, later ones at most once
 * per interval, and only the count as it stands when the interval ends (a
 * burst of 50 joins is one or two frames, not 50). A count equal to the
 * last one sent is not sent again.
 *
 * Memory only: after the room is evicted the next change is sent at once,
 * which is at worst one frame more than needed.
 */

/** At most this many count frames per second per channel ("a few", as Pusher). */
export const SUBSCRIPTION_COUNT_INTERVAL_MS = 500;

export class SubscriptionCountNotifier {
  #lastSent: number | undefined;
  #lastAt = Number.NEGATIVE_INFINITY;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    /** The channel's subscriber count now, over every hub shard. */
    private readonly count: () => number,
    private readonly send: (count: number) => void,
    private readonly intervalMs = SUBSCRIPTION_COUNT_INTERVAL_MS,
  ) {}

  /** The count may have changed. */
  changed(now = Date.now()): void {
    if (this.#timer !== undefined) return; // the pending send will read the count then
    const wait = this.#lastAt + this.intervalMs - now;
    if (wait <= 0) return this.#flush(now);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#flush(Date.now());
    }, wait);
  }

  #flush(now: number): void {
    const count = this.count();
    if (count === this.#lastSent) return;
    this.#lastSent = count;
    this.#lastAt = now;
    this.send(count);
  }
}
