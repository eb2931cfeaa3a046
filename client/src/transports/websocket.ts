/**
 * WebSocket transport: `GET /rooms/:room/ws?token=…&after=SEQ`. Opens when
 * the `welcome` frame arrives (a socket that opens but is never welcomed is
 * not connected). Sends the text `ping` every `pingIntervalMs` (answered by
 * the runtime without waking the room) and drops the socket when nothing at
 * all comes back within `pongTimeoutMs`: half-open sockets behind NATs and
 * proxies otherwise look alive forever.
 *
 * It acknowledges what the room has processed (acknowledger.ts), which opts
 * it in to the server's flow control: fall too far behind and the server
 * closes the socket with 1013, reported as `too_far_behind` so the Room
 * resumes at once from its cursor.
 *
 * It connects with `batch=1`: a busy room then sends several envelopes in
 * one `messages` frame and several acks in one `acks` frame. They are
 * handed on one at a time, exactly as single frames are, so the Room and
 * its listeners see the same `message` events either way.
 */
import type { Envelope } from "../../../protocol/envelope.js";
import type { ServerFrame } from "../../../protocol/frames.js";
import type { ClientFrame } from "../frames.js";
import { RoomError } from "../errors.js";
import { Acknowledger } from "./acknowledger.js";
import type { Transport, TransportEvents } from "./transport.js";

/** The subset of the WebSocket API the transport uses (the browser's, Node 22's, or `ws`). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "open" | "message" | "close" | "error", listener: (event: any) => void): void;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

const OPEN = 1;
/** The server's close code for a socket too far behind its acks ("try again later"). */
export const CLOSE_TOO_FAR_BEHIND = 1013;

export interface WebSocketTransportOptions {
  pingIntervalMs: number;
  pongTimeoutMs: number;
}

export class WebSocketTransport implements Transport {
  readonly kind = "websocket" as const;
  #socket?: WebSocketLike;
  #welcomed = false;
  #ended = false;
  #pingTimer?: ReturnType<typeof setInterval>;
  #pongTimer?: ReturnType<typeof setTimeout>;
  #after?: number;
  #acks?: Acknowledger;
  /** While a replay is arriving: the welcome's seq, where it ends (acked at once when reached). */
  #replayEnd?: number;

  constructor(
    private readonly url: (after: number | undefined) => string,
    private readonly Impl: WebSocketConstructor,
    private readonly events: TransportEvents,
    private readonly options: WebSocketTransportOptions,
  ) {}

  get isOpen(): boolean {
    return this.#welcomed && !this.#ended;
  }

  open(after: number | undefined): void {
    this.#after = after;
    let socket: WebSocketLike;
    try {
      socket = new this.Impl(this.url(after));
    } catch {
      // A constructor that throws (a blocked or broken WebSocket, a URL it refuses). The cause is
      // unknown here, so report none: the Room asks the server whether it is the transport.
      queueMicrotask(() => this.#end());
      return;
    }
    this.#socket = socket;
    socket.addEventListener("message", (event: { data: unknown }) => this.#onMessage(event.data));
    socket.addEventListener("close", (event: { code?: number; reason?: string }) => {
      const tooFarBehind = event?.code === CLOSE_TOO_FAR_BEHIND;
      this.#end(tooFarBehind ? new RoomError("too_far_behind", event.reason || "the server closed the socket: too far behind") : undefined);
    });
    socket.addEventListener("error", () => {
      // A close event follows; some implementations skip it after a failed handshake, so end here too.
      if (socket.readyState !== OPEN) this.#end();
    });
  }

  sendFrame(frame: ClientFrame): boolean {
    if (!this.isOpen || this.#socket?.readyState !== OPEN) return false;
    try {
      this.#socket.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  close(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#stopTimers();
    this.#acks?.stop();
    try {
      this.#socket?.close(1000, "client closed");
    } catch {
      // not open yet or already closing
    }
  }

  #onMessage(data: unknown): void {
    if (this.#ended) return;
    this.#alive();
    if (typeof data !== "string" || data === "pong") return;
    let frame: ServerFrame;
    try {
      frame = JSON.parse(data) as ServerFrame;
    } catch {
      return; // not ours to understand
    }
    switch (frame.type) {
      case "welcome":
        this.#welcomed = true;
        this.#startPings();
        this.events.opened(this, { seq: frame.seq, user: frame.user, presence: frame.presence });
        this.#startAcks(frame.seq);
        return;
      case "message":
        return this.#onEnvelopes([frame.message], data.length);
      case "messages":
        return this.#onEnvelopes(frame.messages, data.length);
      case "acks":
        for (const ack of frame.acks) {
          this.events.reply(this, { type: "ack", ...ack });
          if (this.#ended) return;
        }
        break;
      case "presence":
      case "typing":
      case "read":
        this.events.signal(this, frame);
        break;
      case "ack":
      case "error":
        this.events.reply(this, frame);
        break;
      case "pong":
        break;
    }
    if (!this.#ended) this.#acks?.received(data.length);
  }

  /** Envelopes of one frame, in seq order; `bytes` is the frame's size, for the acknowledger. */
  #onEnvelopes(envelopes: readonly Envelope[], bytes: number): void {
    let replayDone = false;
    for (const envelope of envelopes) {
      this.events.envelope(this, envelope);
      if (this.#ended) return; // the Room dropped this connection (it skipped a seq)
      this.#acks?.processed(envelope.seq);
      if (this.#replayEnd !== undefined && envelope.seq >= this.#replayEnd) {
        this.#replayEnd = undefined;
        replayDone = true;
      }
    }
    this.#acks?.received(bytes, replayDone);
  }

  /**
   * The first ack opts the socket in at once, acknowledging where it starts:
   * the cursor it resumes after (never beyond the room's seq), or the
   * welcome's seq when it starts live.
   */
  #startAcks(roomSeq: number): void {
    if (this.#ended) return;
    const acks = new Acknowledger((seq) => this.#sendAck(seq));
    this.#acks = acks;
    const from = this.#after === undefined ? roomSeq : Math.min(this.#after, roomSeq);
    if (from < roomSeq) this.#replayEnd = roomSeq;
    acks.processed(from);
    acks.now();
  }

  #sendAck(seq: number): void {
    if (this.#socket?.readyState !== OPEN) return;
    try {
      this.#socket.send(JSON.stringify({ type: "ack", seq } satisfies ClientFrame));
    } catch {
      // closing: the close event follows
    }
  }

  #startPings(): void {
    this.#pingTimer = setInterval(() => {
      if (this.#socket?.readyState !== OPEN) return;
      try {
        this.#socket.send("ping");
      } catch {
        return;
      }
      this.#pongTimer ??= setTimeout(() => {
        this.#end(new RoomError("timeout", `no answer to ping within ${this.options.pongTimeoutMs} ms`));
      }, this.options.pongTimeoutMs);
    }, this.options.pingIntervalMs);
  }

  /** Anything from the server proves the socket is alive. */
  #alive(): void {
    clearTimeout(this.#pongTimer);
    this.#pongTimer = undefined;
  }

  #stopTimers(): void {
    clearInterval(this.#pingTimer);
    clearTimeout(this.#pongTimer);
    this.#pongTimer = undefined;
  }

  #end(error?: RoomError): void {
    if (this.#ended) return;
    const wasOpen = this.#welcomed;
    this.close();
    this.events.closed(this, error ? { wasOpen, error } : { wasOpen });
  }
}
