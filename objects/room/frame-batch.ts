/**
 * Socket frames handled together, one turn after they arrive.
 *
 * Each frame a hibernatable WebSocket receives is its own event in the
 * runtime. Handled there and then, every accepted `send` ends its turn with
 * its own storage commit, and the output gate holds the ack until that
 * commit is durable: one commit (a WAL write and an fsync locally) per
 * event. That, not the room's code, capped a pipelining publisher at about
 * 400 accepted events/s in plain workerd (a room that only inserts one row
 * per frame: 400/s; the same room without the insert: 9,800/s).
 *
 * So frames are queued as they arrive and handled in a later turn
 * (`setTimeout(0)`): frames that arrive meanwhile join the same batch, their
 * writes share one implicit transaction and one commit, and their acks and
 * fan-out leave together once it is durable (the output gate still holds
 * everything until then, so "acknowledged" keeps meaning "durable"). While
 * the batch waits no storage operation is pending, so the runtime keeps
 * delivering frames instead of holding them at the input gate.
 *
 * A frame that arrives on its own (none in the last BURST_MS) is handled at
 * once: waiting for a timer costs about 1 ms in workerd, which a lone chat
 * message should not pay (ack p50 0.9 ms at once, 2 ms through the timer).
 *
 * Frames are handled in arrival order, every kind of frame, so a socket's
 * answers (acks, errors, pongs) keep the order of its frames.
 */
/** Frames closer together than this are a burst, and are batched. */
const BURST_MS = 10;

export class FrameBatch<T> {
  #pending: T[] = [];
  #lastArrival = -Infinity;

  constructor(
    /** Handles the frames of one batch, in arrival order, in one turn. */
    private readonly handle: (item: T) => void,
    /** Called with an item whose handling threw; the rest of the batch goes on. */
    private readonly failed: (item: T, error: unknown) => void,
  ) {}

  /** Handles a lone frame now; queues one of a burst, the first of a batch scheduling the turn that handles them all. */
  add(item: T): void {
    const now = Date.now();
    const burst = now - this.#lastArrival < BURST_MS;
    this.#lastArrival = now;
    if (!burst && this.#pending.length === 0) return this.#handle(item);
    this.#pending.push(item);
    if (this.#pending.length === 1) setTimeout(() => this.#run(), 0);
  }

  #run(): void {
    const items = this.#pending;
    this.#pending = [];
    for (const item of items) this.#handle(item);
  }

  #handle(item: T): void {
    try {
      this.handle(item);
    } catch (error) {
      this.failed(item, error);
    }
  }
}
