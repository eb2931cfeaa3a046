/**
 * What a WebSocket client that acknowledges (`{"type":"ack","seq":N}`) has
 * been sent and has not acknowledged yet, in bytes. The runtime does not say
 * how much of a socket's output is still unsent (workerd has no
 * `bufferedAmount`), so the client's acks are the room's only measure of how
 * far behind it is.
 *
 * Every frame sent counts (events, signals, the socket's own replies); only
 * events carry a seq, so the window remembers, for each event frame not yet
 * acknowledged, how many bytes had been sent once it was: an ack of seq N
 * acknowledges everything up to and including N's frame. An ack of the
 * newest seq sent acknowledges everything sent so far, signals after it
 * included: the client is evidently reading, and otherwise a quiet room
 * with busy typing signals would add up forever.
 *
 * Memory only: after the room wakes from hibernation a socket's window
 * starts empty (what was sent before counts as acknowledged). Its size is
 * bounded because the socket is closed once `unacked` passes the cap.
 */
export class AckWindow {
  /** Bytes sent since the window opened. */
  #sent = 0;
  /** `#sent` as of the newest acknowledged frame. */
  #acked = 0;
  /** Seqs of event frames sent and not acknowledged, oldest first, from `#head` on. */
  readonly #seqs: number[] = [];
  /** `#sent` right after each of those frames went out. */
  readonly #ends: number[] = [];
  #head = 0;

  /** Bytes sent and not acknowledged. */
  get unacked(): number {
    return this.#sent - this.#acked;
  }

  /** An event frame of `bytes` went out. */
  sentEvent(seq: number, bytes: number): void {
    this.#sent += bytes;
    this.#seqs.push(seq);
    this.#ends.push(this.#sent);
  }

  /** A frame without a seq (a signal, a reply to this socket) went out. */
  sentOther(bytes: number): void {
    this.#sent += bytes;
  }

  /**
   * The client has processed every event up to `seq`. `newestSent` is the
   * highest seq given to the socket: an ack at or beyond it acknowledges
   * everything sent (beyond it is clamped, so it cannot acknowledge events
   * not sent yet). An ack below what was already acknowledged changes
   * nothing: acks never move backwards.
   */
  acknowledge(seq: number, newestSent: number): void {
    if (seq >= newestSent) {
      this.#acked = this.#sent;
      this.#seqs.length = 0;
      this.#ends.length = 0;
      this.#head = 0;
      return;
    }
    const seqs = this.#seqs;
    let head = this.#head;
    while (head < seqs.length && seqs[head]! <= seq) head++;
    if (head === this.#head) return;
    this.#acked = this.#ends[head - 1]!;
    // Drop the acknowledged entries now and then, not on every ack.
    if (head >= 1024 && head * 2 >= seqs.length) {
      seqs.splice(0, head);
      this.#ends.splice(0, head);
      head = 0;
    }
    this.#head = head;
  }
}
