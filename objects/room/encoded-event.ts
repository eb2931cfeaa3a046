/**
 * An accepted event with its wire forms. The envelope is serialized once,
 * when it is accepted, and every transport's frame is built from that one
 * string the first time a subscriber of that kind needs it, so fan-out to N
 * sockets costs one serialization, not N.
 */
import type { Envelope } from "../../protocol/envelope";

export class EncodedEvent {
  #envelope?: Envelope;
  #wsFrame?: string;
  #sseFrame?: string;

  constructor(
    readonly seq: number,
    /** The envelope as JSON, exactly as stored and sent. */
    readonly json: string,
    envelope?: Envelope,
    /** The sender's `role` claim, kept beside the envelope (the legacy API shows it). */
    readonly senderRole: string | null = null,
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

  /** One SSE event: `id:`, `event: message`, `data:`. */
  get sseFrame(): string {
    return (this.#sseFrame ??= `id: ${this.seq}\nevent: message\ndata: ${this.json}\n\n`);
  }
}
