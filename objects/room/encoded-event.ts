/**
 * An accepted event with its wire forms. The envelope is serialized once,
 * when it is accepted, and every transport's frame is built from that one
 * string the first time a subscriber of that kind needs it, so fan-out to N
 * sockets costs one serialization, not N.
 */
import type { Envelope } from "../../protocol/envelope";
import { roomEventFrame } from "../../protocol/pusher-socket";
import { utf8Length } from "./utf8-length";

/** `{"type":"message","message":` and `}`: ASCII, so its length is its size. */
const WS_FRAME_OVERHEAD = `{"type":"message","message":}`.length;

export class EncodedEvent {
  #envelope?: Envelope;
  #wsFrame?: string;
  #wsFrameBytes?: number;
  #jsonBytes?: number;
  #sseFrame?: string;
  #pusherFrame?: string;

  constructor(
    readonly seq: number,
    /** The envelope as JSON, exactly as stored and sent. */
    readonly json: string,
    envelope?: Envelope,
    /** The sender's `role` claim, kept beside the envelope (the legacy API shows it). */
    readonly senderRole: string | null = null,
    /**
     * Live only, never stored: the Pusher `socket_id` that triggered this
     * event, which the Pusher fan-out skips (Pusher's "exclude a recipient").
     */
    readonly exceptSocketId?: string,
  ) {
    this.#envelope = envelope;
  }

  get envelope(): Envelope {
    return (this.#envelope ??= JSON.parse(this.json) as Envelope);
  }

  /** `{"type":"message","message":<envelope>}` */
  get wsFrame(): string {
    return (this.#wsFrame ??= `{"type":"message","message":${this.json}}`);
  }

  /** The WebSocket frame's UTF-8 size, counted once and only when a socket that acknowledges needs it (AckWindow). */
  get wsFrameBytes(): number {
    return (this.#wsFrameBytes ??= this.jsonBytes + WS_FRAME_OVERHEAD);
  }

  /** The envelope's UTF-8 size, counted once (coalesced frames are bounded by it, see EventRun). */
  get jsonBytes(): number {
    return (this.#jsonBytes ??= utf8Length(this.json));
  }

  /** One SSE event: `id:`, `event: message`, `data:`. */
  get sseFrame(): string {
    return (this.#sseFrame ??= `id: ${this.seq}\nevent: message\ndata: ${this.json}\n\n`);
  }

  /** The Pusher channel event (docs/pusher.md), built once for every hub shard. */
  get pusherFrame(): string {
    return (this.#pusherFrame ??= roomEventFrame(this.envelope));
  }
}
