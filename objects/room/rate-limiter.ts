/**
 * Token bucket per user: `ratePerSecond` sends per second with bursts of up
 * to `burst`. Kept in memory: a room hibernates only after seconds of
 * silence, by which time every bucket has refilled, so a woken room starting
 * with full buckets is exactly what the bucket would hold anyway.
 */
const MAX_TRACKED_USERS = 10_000;

export class RateLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
  ) {}

  /** Takes a token for `key`. Returns 0 when allowed, else the seconds to wait. */
  take(key: string, now: number): number {
    const bucket = this.#buckets.get(key) ?? { tokens: this.burst, at: now };
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.ratePerSecond);
    bucket.at = now;
    if (bucket.tokens < 1) {
      this.#buckets.set(key, bucket);
      return Math.max(1, Math.ceil((1 - bucket.tokens) / this.ratePerSecond));
    }
    bucket.tokens -= 1;
    this.#buckets.set(key, bucket);
    if (this.#buckets.size > MAX_TRACKED_USERS) this.#forgetFullBuckets(now);
    return 0;
  }

  /** Full buckets carry no information: drop them to bound memory. */
  #forgetFullBuckets(now: number): void {
    for (const [key, bucket] of this.#buckets) {
      if (bucket.tokens + ((now - bucket.at) / 1000) * this.ratePerSecond >= this.burst) this.#buckets.delete(key);
    }
  }
}
