/**
 * A Server-Sent Events stream as a subscriber. The room object holds the
 * writable end of the response body; a client that goes away errors the
 * stream, which removes the subscriber at once. A client too slow to read
 * (more than MAX_PENDING_BYTES queued) is cut off rather than allowed to grow
 * the object's memory; it resumes with Last-Event-ID like any dropped client.
 */
import type { UserRef } from "../../protocol/envelope";
import type { EncodedEvent } from "./encoded-event";
import type { EncodedSignal } from "./encoded-signal";
import type { Subscriber } from "./subscriber";

const MAX_PENDING_BYTES = 1024 * 1024;
/** A replay pauses above this many unsent bytes, and goes on once the client has read below RESUME_REPLAY_BYTES. */
const PAUSE_REPLAY_BYTES = 256 * 1024;
const RESUME_REPLAY_BYTES = 64 * 1024;
const encoder = new TextEncoder();

export class SseSubscriber implements Subscriber {
  readonly kind = "sse";
  readonly countsAsConnection = true;
  cursor = 0;
  #pendingBytes = 0;
  #closed = false;
  #drainWaiters: (() => void)[] = [];
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  /** The response body to hand to the client. */
  readonly body: ReadableStream<Uint8Array>;

  constructor(
    readonly user: UserRef,
    /** Called once when the stream ends, whoever ended it. */
    private readonly onClosed: (subscriber: SseSubscriber) => void,
  ) {
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
    this.body = readable;
    this.#writer = writable.getWriter();
    this.#writer.closed.catch(() => this.#end());
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** `retry:` tells EventSource how long to wait before reconnecting. */
  start(retryMs: number): void {
    this.write(`retry: ${retryMs}\n\n`);
  }

  deliver(event: EncodedEvent): boolean {
    this.write(event.sseFrame);
    return !this.#closed;
  }

  signal(signal: EncodedSignal): void {
    this.write(signal.sseFrame);
  }

  /** See Subscriber.drained: a replay goes on once the client has read most of what it was given. */
  drained(): Promise<void> | undefined {
    if (this.#closed || this.#pendingBytes < PAUSE_REPLAY_BYTES) return undefined;
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  /** A comment line: keeps proxies from timing the stream out. */
  heartbeat(): void {
    this.write(": heartbeat\n\n");
  }

  close(): void {
    if (this.#closed) return;
    this.#writer.close().catch(() => {});
    this.#end();
  }

  write(text: string): void {
    if (this.#closed) return;
    const bytes = encoder.encode(text);
    this.#pendingBytes += bytes.byteLength;
    if (this.#pendingBytes > MAX_PENDING_BYTES) {
      this.#writer.abort(new Error("slow consumer")).catch(() => {});
      this.#end();
      return;
    }
    this.#writer.write(bytes).then(
      () => {
        this.#pendingBytes -= bytes.byteLength;
        if (this.#pendingBytes < RESUME_REPLAY_BYTES) this.#wakeReplay();
      },
      () => this.#end(),
    );
  }

  #end(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#wakeReplay();
    this.onClosed(this);
  }

  #wakeReplay(): void {
    for (const resolve of this.#drainWaiters.splice(0)) resolve();
  }
}
