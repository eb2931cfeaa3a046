/**
 * An ephemeral signal (presence, typing, read) serialized once for every
 * transport, like EncodedEvent. Signals have no seq and are never stored.
 */
import type { SignalFrame } from "../../protocol/frames";
import { utf8Length } from "./utf8-length";

export class EncodedSignal {
  #wsFrame?: string;
  #wsFrameBytes?: number;
  #sseFrame?: string;

  constructor(
    readonly frame: SignalFrame,
    /** A user id that must not receive it (the typist, for typing). */
    readonly exceptUserId?: string,
  ) {}

  get wsFrame(): string {
    return (this.#wsFrame ??= JSON.stringify(this.frame));
  }

  /** The WebSocket frame's UTF-8 size, for sockets that acknowledge (AckWindow). */
  get wsFrameBytes(): number {
    return (this.#wsFrameBytes ??= utf8Length(this.wsFrame));
  }

  /** `event: presence|typing|read` with no `id:`, so it moves no resume cursor. */
  get sseFrame(): string {
    return (this.#sseFrame ??= `event: ${this.frame.type}\ndata: ${this.wsFrame}\n\n`);
  }
}
