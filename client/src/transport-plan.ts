/**
 * Which transport to use next. Transports are tried in the given order
 * (WebSocket, SSE, long-poll by default). The current one is given up for the
 * next after `maxFailures` failures in a row, a failure being a connection
 * that never opened or died before it had been up for a while, while the
 * server itself answered HTTP: a server that is down is not the transport's
 * fault. Going back up is the Room's job (it probes the best transport in the
 * background); `promote` records that it worked.
 */
import type { TransportKind } from "./transports/transport.js";

export class TransportPlan {
  #index = 0;
  #failures = 0;

  constructor(
    readonly order: readonly TransportKind[],
    private readonly maxFailures: number,
  ) {
    if (order.length === 0) throw new Error("no transport to use");
  }

  get current(): TransportKind {
    return this.order[this.#index]!;
  }

  get best(): TransportKind {
    return this.order[0]!;
  }

  /** Records a failure of the current transport; true when that moved the plan to the next one. */
  failed(): boolean {
    this.#failures++;
    if (this.#failures < this.maxFailures || this.#index >= this.order.length - 1) return false;
    this.#index++;
    this.#failures = 0;
    return true;
  }

  /** The current transport held: its failures start over. */
  held(): void {
    this.#failures = 0;
  }

  /** A better transport was tried in the background and worked: use it from now on. */
  promote(kind: TransportKind): void {
    const index = this.order.indexOf(kind);
    if (index < 0) return;
    this.#index = index;
    this.#failures = 0;
  }
}
