/**
 * When a WebSocket tells the server what the room has processed
 * (`{"type":"ack","seq":N}`). The server closes a socket that acks with 1013
 * once it was sent more than its cap (4 MiB by default) beyond the last
 * acknowledged seq, so a client that keeps reading must stay well under the
 * cap, while one that stops (a frozen tab, a stalled process) is cut and
 * resumes later instead of piling frames up in the server.
 *
 * An ack goes out for every `everyBytes` of frames received, and at the
 * moments the Room asks for one (the welcome, which opts the socket in; the
 * end of a replay burst). There is no timer on purpose: the server only
 * needs to know the client is within the cap, and every ack is work for the
 * room, so a room of a thousand sockets at chat rates must not get a
 * thousand acks per message; an ack per 64 KiB keeps what the server counts
 * under 64 KiB plus what is in flight.
 */
export const ACK_EVERY_BYTES = 64 * 1024;

export class Acknowledger {
  #seq?: number;
  #bytes = 0;
  #stopped = false;

  constructor(
    private readonly send: (seq: number) => void,
    private readonly everyBytes = ACK_EVERY_BYTES,
  ) {}

  /** Every event up to `seq` has been processed (given to the room's listeners, or dropped as a repeat). */
  processed(seq: number): void {
    if (this.#seq === undefined || seq > this.#seq) this.#seq = seq;
  }

  /** A frame of about `bytes` arrived and was handled; `ackNow` when it ended a replay burst. */
  received(bytes: number, ackNow = false): void {
    this.#bytes += bytes;
    if (ackNow || this.#bytes >= this.everyBytes) this.now();
  }

  /** Acks the newest processed seq now. */
  now(): void {
    this.#bytes = 0;
    if (this.#stopped || this.#seq === undefined) return;
    this.send(this.#seq);
  }

  stop(): void {
    this.#stopped = true;
  }
}
