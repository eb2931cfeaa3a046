/**
 * An ephemeral signal (presence, typing, read) serialized once for every
 * transport, like EncodedEvent. Signals have no seq and are never stored.
 */
import type { SignalFrame } from "../../protocol/frames";

export class EncodedSignal {
  #wsFrame?: string;
  #sseFrame?: string;

  constructor(
    readonly frame: SignalFrame,
    /** A user id that must not receive it (the typist, for typing). */
    readonly exceptUserId?: string,
  ) {}

  get wsFrame(): string {
    return (this.#wsFrame ??= JSON.stringify(this.frame));
  }

  /** `event: presence|typing|read` with no `id:`, so it moves no resume cursor. */
  get sseFrame(): string {
    return (this.#sseFrame ??= `event: ${this.frame.type}\ndata: ${this.wsFrame}\n\n`);
  }
}
