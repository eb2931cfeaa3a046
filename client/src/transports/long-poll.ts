/**
 * Long-poll transport: `GET /rooms/:room/messages?after=SEQ&wait=S`, in a
 * loop, each request from the Room's cursor. The first request does not
 * wait, so the transport opens (and replays what was missed) at once; the
 * next ones are held by the server until a message arrives or `wait` passes.
 * Plain HTTP: it works through every proxy, and its errors are readable.
 * Long-poll carries the log only; presence is refreshed by the Room over HTTP,
 * and typing and read signals do not reach long-poll clients.
 */
import { toRoomError, type RoomError } from "../errors.js";
import type { HttpApi } from "../http-api.js";
import type { Transport, TransportEvents } from "./transport.js";

export interface LongPollOptions {
  /** Seconds the server may hold each request (it clamps to its own maximum, 25 by default). */
  waitSeconds: number;
  /** Messages per answer. */
  limit: number;
}

export class LongPollTransport implements Transport {
  readonly kind = "longpoll" as const;
  readonly #abort = new AbortController();
  #opened = false;
  #ended = false;

  constructor(
    private readonly api: HttpApi,
    /** The Room's cursor: each poll resumes from what the Room has delivered. */
    private readonly cursor: () => number | undefined,
    private readonly events: TransportEvents,
    private readonly options: LongPollOptions,
  ) {}

  get isOpen(): boolean {
    return this.#opened && !this.#ended;
  }

  open(after: number | undefined): void {
    void this.#loop(after);
  }

  sendFrame(): boolean {
    return false; // sends go over HTTP
  }

  close(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#abort.abort();
  }

  async #loop(after: number | undefined): Promise<void> {
    // Yield first, like the other transports: open() never reports synchronously.
    await Promise.resolve();
    while (!this.#ended) {
      const from = this.cursor() ?? after;
      let page;
      try {
        page =
          from === undefined
            ? { messages: [], seq: await this.api.lastSeq(this.#abort.signal) }
            : await this.api.messages(
                { after: from, wait: this.#opened ? this.options.waitSeconds : 0, limit: this.options.limit },
                this.#abort.signal,
              );
      } catch (error) {
        return this.#end(toRoomError(error));
      }
      if (this.#ended) return;
      if (!this.#opened) {
        this.#opened = true;
        this.events.opened(this, { seq: page.seq });
        if (this.#ended) return;
      }
      for (const envelope of page.messages) {
        if (this.#ended) return;
        this.events.envelope(this, envelope);
      }
    }
  }

  #end(error: RoomError): void {
    if (this.#ended) return;
    const wasOpen = this.#opened;
    this.close();
    this.events.closed(this, { wasOpen, error });
  }
}
