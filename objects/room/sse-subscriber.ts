/**
 * A Server-Sent Events stream as a subscriber. The room object holds the
 * writable end of the response body; a client that goes away errors the
 * stream, which removes the subscriber at once. A client too slow to read
 * (more than MAX_PENDING_BYTES queued) is cut off rather than allowed to grow
 * the object's memory; it resumes with Last-Event-ID like any dropped client.
 *
 * Hot path (docs/architecture.md, "Hot path"): the body is the runtime's
 * native byte pipe (IdentityTransformStream), not a JavaScript
 * TransformStream, so the response pump moves the bytes without running
 * JavaScript for each chunk; the bytes the client has not taken are read
 * synchronously from the writer (`desiredSize`) instead of from a
 * continuation on every write; and what a stream is given in one moment
 * (the events of a batch or of concurrent publishers, a replay page, a
 * signal) goes out as one write (StreamFlush).
 */
import type { UserRef } from "../../protocol/envelope";
import type { EncodedSignal } from "./encoded-signal";
import type { EventRun } from "./event-run";
import type { Flushable, StreamFlush } from "./stream-flush";
import type { Subscriber } from "./subscriber";
import { utf8Length } from "./utf8-length";

const MAX_PENDING_BYTES = 1024 * 1024;
/** A replay pauses above this many unsent bytes, and goes on once the client has read below RESUME_REPLAY_BYTES. */
const PAUSE_REPLAY_BYTES = 256 * 1024;
const RESUME_REPLAY_BYTES = 64 * 1024;
const ignore = () => {};

export class SseSubscriber implements Subscriber, Flushable {
  readonly kind = "sse";
  readonly countsAsConnection = true;
  cursor = 0;
  #closed = false;
  /** Text written since the last flush, not yet handed to the stream (see StreamFlush). */
  #queued = "";
  #queuedBytes = 0;
  /** Wakes a paused replay when the stream ends, whether or not the writer ever settles `ready` then. */
  #onEnd?: () => void;
  /** A replay is waiting for the client to read what it was given (see `drained`). */
  #replayPaused = false;
  /**
   * The native writable accepts strings (as UTF-8) besides bytes, which
   * spares an encoding in JavaScript; its high-water mark is the replay's
   * resume threshold, so `ready` resolves exactly when a paused replay may
   * go on, and `desiredSize` is that mark minus the bytes not yet sent.
   */
  readonly #writer: WritableStreamDefaultWriter<string>;
  /** The response body to hand to the client. */
  readonly body: ReadableStream<Uint8Array>;

  constructor(
    readonly user: UserRef,
    /** Called once when the stream ends, whoever ended it. */
    private readonly onClosed: (subscriber: SseSubscriber) => void,
    /** The room's flusher, which hands the queued text of every stream to the runtime once per moment. */
    private readonly flusher: StreamFlush,
  ) {
    const { readable, writable } = new IdentityTransformStream({ highWaterMark: RESUME_REPLAY_BYTES });
    this.body = readable;
    this.#writer = writable.getWriter() as unknown as WritableStreamDefaultWriter<string>;
    this.#writer.closed.catch(() => this.#end());
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** `retry:` tells EventSource how long to wait before reconnecting. */
  start(retryMs: number): void {
    this.write(`retry: ${retryMs}\n\n`);
  }

  deliver(run: EventRun): boolean {
    let text = "";
    for (const event of run.events) text += event.sseFrame;
    this.write(text);
    return !this.#closed;
  }

  signal(signal: EncodedSignal): void {
    this.write(signal.sseFrame);
  }

  /** See Subscriber.drained: a replay goes on once the client has read most of what it was given. */
  drained(): Promise<void> | undefined {
    if (this.#closed || this.#unsent() < PAUSE_REPLAY_BYTES) return undefined;
    this.flush();
    if (this.#closed) return undefined;
    const ended = new Promise<void>((resolve) => (this.#onEnd = resolve));
    this.#replayPaused = true;
    return Promise.race([this.#writer.ready.then(ignore, ignore), ended]).finally(() => (this.#replayPaused = false));
  }

  /**
   * A comment line: keeps proxies from timing the stream out, and finds a client that hung up. Not
   * while a replay waits for its client to read: that stream is far from idle, and a write then
   * stalled the replay for good (test/worker/slow-consumer.test.ts › an SSE resume … is paced).
   */
  heartbeat(): void {
    if (this.#replayPaused) return;
    this.write(": heartbeat\n\n");
  }

  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#writer.close().catch(ignore);
    this.#end();
  }

  /** Queues text for the next flush. */
  write(text: string): void {
    if (this.#closed) return;
    if (this.#queued === "") this.flusher.mark(this);
    this.#queued += text;
    this.#queuedBytes += utf8Length(text);
    if (this.#unsent() > MAX_PENDING_BYTES) this.#cut();
  }

  /** Bytes given to this stream that its client has not taken: queued this turn, or in the pipe. */
  #unsent(): number {
    return this.#queuedBytes + RESUME_REPLAY_BYTES - (this.#writer.desiredSize ?? RESUME_REPLAY_BYTES);
  }

  /** Hands what is queued to the stream, as one write. */
  flush(): void {
    const text = this.#queued;
    if (text === "" || this.#closed) return;
    this.#queued = "";
    this.#queuedBytes = 0;
    // Errors surface through `closed` (which ends the subscriber); this only keeps them from being reported as unhandled.
    this.#writer.write(text).catch(ignore);
  }

  /** Too far behind: drop the stream (and what it holds) rather than grow the room's memory. */
  #cut(): void {
    this.#queued = "";
    this.#queuedBytes = 0;
    this.#writer.abort(new Error("slow consumer")).catch(ignore);
    this.#end();
  }

  #end(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#onEnd?.();
    this.onClosed(this);
  }
}
