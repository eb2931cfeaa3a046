/**
 * A hibernatable WebSocket as a subscriber. Its identity lives in the
 * socket's attachment so it survives hibernation; the wrapper object itself
 * is rebuilt once per wake (see ChatRoom's constructor), never per event.
 *
 * Flow control (docs/api.md, "Acknowledgements and slow sockets"): a client
 * that sends `{"type":"ack","seq":N}` frames has the bytes it was sent and
 * has not acknowledged counted (AckWindow); past `maxUnackedBytes` the room
 * closes it with 1013 and it resumes with `?after=`, and a replay to it
 * waits for its acks instead of running ahead. A socket that never acks is
 * sent to exactly as before, with nothing counted or allocated per event.
 *
 * Coalesced frames (docs/api.md, `batch=1`): a socket that opted in gets
 * each run the Hub hands it as few `messages` frames as EventRun's bounds
 * allow, and the acks of its sends accepted before one fan-out as one
 * `acks` frame.
 * Flow control counts those frames in bytes like any other, each
 * acknowledged by the seq of its last event. Other sockets get one
 * `message` frame per event and one `ack` per send.
 */
import type { UserRef } from "../../protocol/envelope";
import type { AckItem, ServerFrame } from "../../protocol/frames";
import { AckWindow } from "./ack-window";
import type { EncodedSignal } from "./encoded-signal";
import type { EventRun } from "./event-run";
import type { Subscriber } from "./subscriber";
import { utf8Length } from "./utf8-length";

/**
 * A socket whose unsent frames exceed this is a consumer that stopped
 * reading: it is closed rather than allowed to grow the room's memory, and
 * the client resumes with `?after=<last seq>` when it is ready. Only for a
 * runtime that reports `bufferedAmount`; workerd does not (acks do the job there).
 */
export const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** "Try Again Later": the client should reconnect and resume. */
export const CLOSE_SLOW_CONSUMER = 1013;
export const SLOW_CONSUMER_REASON = "too far behind: reconnect with ?after=<last seq>";

/** What a socket carries through hibernation. */
export interface SocketAttachment {
  user: UserRef;
  role?: string;
  /** Set by the socket's first `ack` frame (it takes part in flow control); written once, never per ack. */
  acks?: true;
  /** Connected with `batch=1`: takes coalesced `messages` and `acks` frames. */
  batch?: true;
}

/** What all of a room's sockets share; built once per wake. */
export interface SocketPolicy {
  /** Unacknowledged bytes past which a socket that acks is closed (WS_MAX_UNACKED_BYTES); 0: no cap. */
  readonly maxUnackedBytes: number;
  /** The room closed this socket for falling behind: the Hub forgets it (the close handshake may never finish). */
  dropped(subscriber: WebSocketSubscriber, unackedBytes: number): void;
  /** Runs `task` at the room's next fan-out, before its events (Hub.beforeNextFlush). */
  atNextFanOut(task: () => void): void;
}

export class WebSocketSubscriber implements Subscriber {
  readonly kind = "websocket";
  readonly countsAsConnection = true;
  cursor = 0;
  /** Only for a socket that acks, while there is a cap. Memory only: after a wake it starts empty. */
  #window?: AckWindow;
  #closed = false;
  /** A replay waiting for the client's acks (see `drained`). */
  #replayWaiters?: (() => void)[];
  /** batch=1: acks of accepted sends, sent as one frame at the room's next fan-out or before anything else. */
  #acks: AckItem[] = [];

  constructor(
    readonly socket: WebSocket,
    readonly attachment: SocketAttachment,
    private readonly policy: SocketPolicy,
  ) {
    // After a wake, what was sent before counts as acknowledged.
    if (attachment.acks && policy.maxUnackedBytes > 0) this.#window = new AckWindow();
  }

  get user(): UserRef {
    return this.attachment.user;
  }

  get coalesces(): boolean {
    return this.attachment.batch === true;
  }

  /** True once the socket closed, whichever side closed it. */
  get closed(): boolean {
    return this.#closed;
  }

  deliver(run: EventRun): boolean {
    this.#flushAcks();
    if (this.attachment.batch) {
      for (const frame of run.batchFrames) {
        if (!this.#sendEvents(frame.text, frame.lastSeq, frame.bytes)) return false;
      }
      return true;
    }
    for (const event of run.events) {
      if (!this.#sendEvents(event.wsFrame, event.seq, event.wsFrameBytes)) return false;
    }
    return true;
  }

  signal(signal: EncodedSignal): void {
    this.#flushAcks();
    if (!this.#send(signal.wsFrame)) return;
    this.#window?.sentOther(signal.wsFrameBytes);
    this.#keepingUp();
  }

  /** Sends a frame meant for this socket alone (welcome, ack, error, pong), after any acks it is holding. */
  sendFrame(frame: ServerFrame): boolean {
    this.#flushAcks();
    const text = JSON.stringify(frame);
    if (!this.#send(text)) return false;
    this.#window?.sentOther(utf8Length(text));
    return this.#keepingUp();
  }

  /**
   * Answers an accepted send: at once with an `ack` frame, or, on a
   * `batch=1` socket, gathered with the other sends accepted before the
   * room's next fan-out (the frames of a burst, or of a busy moment) into
   * one `acks` frame, sent with that fan-out ahead of the events, or before
   * anything else this socket is sent, so answers keep the order of the
   * frames they answer.
   */
  accepted(ack: AckItem): void {
    if (!this.attachment.batch) {
      this.sendFrame({ type: "ack", ...ack });
      return;
    }
    if (this.#acks.push(ack) === 1) this.policy.atNextFanOut(() => this.#flushAcks());
  }

  /**
   * An `ack` frame: the client has processed every event up to `seq`. The
   * first one opts the socket in, and is the only one that touches the
   * attachment; none touches storage.
   */
  acknowledge(seq: number): void {
    if (this.#closed) return;
    if (!this.attachment.acks) {
      this.attachment.acks = true;
      this.socket.serializeAttachment(this.attachment);
      if (this.policy.maxUnackedBytes > 0) this.#window = new AckWindow();
    }
    const window = this.#window;
    if (!window) return;
    window.acknowledge(seq, this.cursor);
    if (this.#replayWaiters && window.unacked <= this.policy.maxUnackedBytes / 4) this.#wakeReplay();
  }

  /**
   * See Subscriber.drained: a replay to a socket that acks pauses once half
   * the cap is unacknowledged and goes on when its acks bring that under a
   * quarter, so a client resuming far behind is paced rather than closed by
   * its own catch-up.
   */
  drained(): Promise<void> | undefined {
    const window = this.#window;
    if (!window || this.#closed || window.unacked < this.policy.maxUnackedBytes / 2) return undefined;
    return new Promise((resolve) => (this.#replayWaiters ??= []).push(resolve));
  }

  close(code: number, reason: string): void {
    if (this.#closed) return;
    this.ended();
    try {
      this.socket.close(code, reason);
    } catch {
      // already closed
    }
  }

  /** The connection is over (the client closed it, or it failed): nothing more is sent, a waiting replay stops. */
  ended(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#wakeReplay();
  }

  #flushAcks(): void {
    const acks = this.#acks;
    if (acks.length === 0) return;
    this.#acks = [];
    this.sendFrame(acks.length === 1 ? { type: "ack", ...acks[0]! } : { type: "acks", acks });
  }

  /** An event frame: sent, counted against the window, and checked against the cap. */
  #sendEvents(text: string, lastSeq: number, bytes: number): boolean {
    if (!this.#send(text)) return false;
    this.#window?.sentEvent(lastSeq, bytes);
    return this.#keepingUp();
  }

  #send(text: string): boolean {
    if (this.#closed) return false;
    try {
      this.socket.send(text);
    } catch {
      return false; // the socket is gone; the Hub drops it
    }
    return true;
  }

  /** False, after closing the socket with 1013, when the client is too far behind. */
  #keepingUp(): boolean {
    const unacked = this.#window?.unacked ?? 0;
    if (unacked <= this.policy.maxUnackedBytes && (this.socket.bufferedAmount ?? 0) <= MAX_BUFFERED_BYTES) return true;
    this.close(CLOSE_SLOW_CONSUMER, SLOW_CONSUMER_REASON);
    this.policy.dropped(this, unacked);
    return false;
  }

  #wakeReplay(): void {
    const waiters = this.#replayWaiters;
    if (!waiters) return;
    this.#replayWaiters = undefined;
    for (const resolve of waiters) resolve();
  }
}
