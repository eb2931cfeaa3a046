/**
 * Server-Sent Events transport: `GET /rooms/:room/events?token=…&after=SEQ`.
 * `event: message` carries an envelope (its `id:` is the seq);
 * `event: presence|typing|read` carry signal frames. EventSource would
 * reconnect by itself with `Last-Event-ID`; this transport closes it on the
 * first error instead and lets the Room reconnect with `?after=` from its
 * own cursor, so backoff and fallback work the same on every transport.
 */
import type { Envelope } from "../../../protocol/envelope.js";
import type { SignalFrame } from "../../../protocol/frames.js";
import type { RoomError } from "../errors.js";
import type { Transport, TransportEvents } from "./transport.js";

/** The subset of the EventSource API the transport uses (the browser's, or the `eventsource` package's). */
export interface EventSourceLike {
  readonly readyState: number;
  close(): void;
  addEventListener(type: string, listener: (event: any) => void): void;
}
export type EventSourceConstructor = new (url: string) => EventSourceLike;

export class SseTransport implements Transport {
  readonly kind = "sse" as const;
  #source?: EventSourceLike;
  #opened = false;
  #ended = false;

  constructor(
    private readonly url: (after: number | undefined) => string,
    private readonly Impl: EventSourceConstructor,
    private readonly events: TransportEvents,
  ) {}

  get isOpen(): boolean {
    return this.#opened && !this.#ended;
  }

  open(after: number | undefined): void {
    let source: EventSourceLike;
    try {
      source = new this.Impl(this.url(after));
    } catch {
      // A constructor that throws: cause unknown here, so report none and let the Room ask the server.
      queueMicrotask(() => this.#end());
      return;
    }
    this.#source = source;
    source.addEventListener("open", () => {
      if (this.#ended || this.#opened) return;
      this.#opened = true;
      this.events.opened(this, {});
    });
    source.addEventListener("message", (event: { data: string }) => {
      if (this.#ended) return;
      const envelope = parse<Envelope>(event.data);
      if (envelope && typeof envelope.seq === "number") this.events.envelope(this, envelope);
    });
    for (const type of ["presence", "typing", "read"] as const) {
      source.addEventListener(type, (event: { data: string }) => {
        if (this.#ended) return;
        const frame = parse<SignalFrame>(event.data);
        if (frame?.type === type) this.events.signal(this, frame);
      });
    }
    source.addEventListener("error", () => this.#end());
  }

  sendFrame(): boolean {
    return false; // SSE is one-way: sends go over HTTP
  }

  close(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#source?.close();
  }

  #end(error?: RoomError): void {
    if (this.#ended) return;
    const wasOpen = this.#opened;
    this.close();
    this.events.closed(this, error ? { wasOpen, error } : { wasOpen });
  }
}

function parse<T>(data: string): T | undefined {
  try {
    return JSON.parse(data) as T;
  } catch {
    return undefined;
  }
}
