/**
 * One PusherHub shard's Pusher connections on this room's channel, as one
 * subscriber: however many sockets of that shard are subscribed, each event
 * crosses to the shard once, and the shard fans it out to its sockets.
 *
 * Frames go out in the room's order. One RPC is in flight at a time;
 * whatever queues meanwhile (events, presence changes, client events,
 * subscription confirmations) leaves as one batch when it returns, so under
 * load there is one RPC per round trip, not one per event.
 *
 * When the shard cannot be reached the batch is retried, with backoff, for
 * as long as it takes; frames keep queueing up to MAX_QUEUED_CHARS. Past
 * that the backlog is dropped and the shard is told (`gap`, before anything
 * queued later): it closes its sockets on the channel with 4200 so their
 * clients resubscribe. A Pusher socket may have to reconnect; it never
 * silently misses an event.
 */
import type { UserRef } from "../../protocol/envelope";
import type { HubDeliverOptions, PusherDelivery } from "../pusher/hub-api";
import type { EncodedSignal } from "./encoded-signal";
import type { EventRun } from "./event-run";
import type { Subscriber } from "./subscriber";

/** Most deliveries, and characters, one RPC carries. */
const MAX_BATCH_ITEMS = 500;
const MAX_BATCH_CHARS = 512 * 1024;
/** Backlog beyond which frames are dropped (see above). */
export const MAX_QUEUED_CHARS = 4 * 1024 * 1024;
const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 2000;

/** Sends one batch to the shard; resolves with how many of its sockets are subscribed to the channel. */
export type HubSend = (deliveries: PusherDelivery[], options: HubDeliverOptions) => Promise<number>;

export class PusherHubSubscriber implements Subscriber {
  readonly kind = "pusher";
  /** Presence counts each presence subscription instead (PusherBridge), not the shard. */
  readonly countsAsConnection = false;
  readonly user: UserRef;
  cursor = 0;
  closed = false;
  #queue: PusherDelivery[] = [];
  #queuedChars = 0;
  #sending = false;
  #gap = false;
  #failures = 0;

  constructor(
    readonly hubName: string,
    private readonly send: HubSend,
    /** The member_added / member_removed delivery for a presence signal, if this channel has presence. */
    private readonly memberDelivery: (signal: EncodedSignal) => PusherDelivery | undefined,
    /** Told, after each batch, how many of the shard's sockets are on the channel. */
    private readonly onSubscribed: (hubName: string, count: number) => void,
  ) {
    // Not a person: an id no JWT `sub` check compares against (signals excluding a user never match it).
    this.user = { id: `\u0000${hubName}`, name: hubName };
  }

  /** One delivery per event (the Pusher protocol has no frame for several); the queue still makes one call per round trip. */
  deliver(run: EventRun): boolean {
    for (const event of run.events) {
      const delivery: PusherDelivery = { frame: event.pusherFrame };
      if (event.exceptSocketId !== undefined) delivery.exceptSocketId = event.exceptSocketId;
      this.push(delivery);
    }
    return !this.closed;
  }

  signal(signal: EncodedSignal): void {
    const delivery = this.memberDelivery(signal);
    if (delivery) this.push(delivery);
  }

  /** Queues a frame for the shard (events, client events, subscription confirmations) and starts sending. */
  push(delivery: PusherDelivery): void {
    if (this.closed) return;
    this.#queue.push(delivery);
    this.#queuedChars += delivery.frame.length;
    if (this.#queuedChars > MAX_QUEUED_CHARS) this.#dropBacklog();
    if (!this.#sending) void this.#pump();
  }

  close(): void {
    this.closed = true;
    this.#queue = [];
    this.#queuedChars = 0;
  }

  /** Deliveries waiting (for tests and status). */
  get queued(): number {
    return this.#queue.length;
  }

  async #pump(): Promise<void> {
    this.#sending = true;
    try {
      while (!this.closed && (this.#gap || this.#queue.length > 0)) {
        // A gap goes alone and first: the shard drops the channel's sockets before anything queued since.
        const gap = this.#gap;
        const batch = gap ? [] : this.#takeBatch();
        try {
          const subscribed = await this.send(batch, gap ? { gap } : {});
          if (gap) this.#gap = false;
          this.#failures = 0;
          if (!this.closed) this.onSubscribed(this.hubName, subscribed);
        } catch (error) {
          this.#failures++;
          if (this.#failures === 1 || this.#failures % 20 === 0) {
            console.error(`pusher: delivery to ${this.hubName} failed (${this.#failures} in a row), retrying:`, error);
          }
          if (!gap) this.#requeue(batch);
          await new Promise((resolve) => setTimeout(resolve, Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (this.#failures - 1))));
        }
      }
    } finally {
      this.#sending = false;
    }
  }

  #takeBatch(): PusherDelivery[] {
    let count = 0;
    let chars = 0;
    while (count < this.#queue.length && count < MAX_BATCH_ITEMS) {
      const size = this.#queue[count]!.frame.length;
      if (count > 0 && chars + size > MAX_BATCH_CHARS) break;
      chars += size;
      count++;
    }
    this.#queuedChars -= chars;
    return this.#queue.splice(0, count);
  }

  /** Puts a failed batch back in front, in order (unless a gap dropped everything meanwhile). */
  #requeue(batch: PusherDelivery[]): void {
    if (this.#gap) return;
    this.#queue.unshift(...batch);
    for (const delivery of batch) this.#queuedChars += delivery.frame.length;
    if (this.#queuedChars > MAX_QUEUED_CHARS) this.#dropBacklog();
  }

  /**
   * Drops everything queued, subscription confirmations included: the
   * shard closes every socket on the channel, subscribing ones too, when it
   * hears of the gap, so none of it would be used.
   */
  #dropBacklog(): void {
    this.#queue = [];
    this.#queuedChars = 0;
    this.#gap = true;
    console.warn(`pusher: ${this.hubName} is too far behind; dropped its backlog, its sockets on this channel will be asked to reconnect`);
  }
}
