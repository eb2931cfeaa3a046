/**
 * Jittered exponential backoff: attempt n waits a random time between half
 * and all of `min(maxMs, initialMs * 2^n)` ("equal jitter"), so a fleet of
 * clients that lost the same server does not come back in lockstep, while
 * each one still retries soon.
 */
export interface BackoffOptions {
  /** The first delay's upper bound. Default 500 ms. */
  initialMs?: number;
  /** No delay is longer than this. Default 30 s. */
  maxMs?: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
}

export class Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly factor: number;
  #attempt = 0;

  constructor(options: BackoffOptions = {}, private readonly random: () => number = Math.random) {
    this.initialMs = options.initialMs ?? 500;
    this.maxMs = options.maxMs ?? 30_000;
    this.factor = options.factor ?? 2;
  }

  /** How many delays have been handed out since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }

  /** The next delay, in ms; each call grows the next one. */
  next(): number {
    const ceiling = Math.min(this.maxMs, this.initialMs * this.factor ** this.#attempt);
    this.#attempt++;
    return Math.round(ceiling / 2 + (this.random() * ceiling) / 2);
  }

  /** After a connection that held: the next delay is short again. */
  reset(): void {
    this.#attempt = 0;
  }
}
