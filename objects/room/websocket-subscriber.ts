/**
 * A hibernatable WebSocket as a subscriber. Its identity lives in the
 * socket's attachment so it survives hibernation; the wrapper object itself
 * is rebuilt once per wake (see ChatRoom's constructor), never per event.
 */
import type { UserRef } from "../../protocol/envelope";
import type { ServerFrame } from "../../protocol/frames";
import type { EncodedEvent } from "./encoded-event";
import type { EncodedSignal } from "./encoded-signal";
import type { Subscriber } from "./subscriber";

/**
 * A socket whose unsent frames exceed this is a consumer that stopped
 * reading: it is closed rather than allowed to grow the room's memory, and
 * the client resumes with `?after=<last seq>` when it is ready.
 */
export const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** "Try Again Later": the client should reconnect and resume. */
export const CLOSE_SLOW_CONSUMER = 1013;

/** What a socket carries through hibernation. */
export interface SocketAttachment {
  user: UserRef;
  role?: string;
}

export class WebSocketSubscriber implements Subscriber {
  readonly kind = "websocket";
  readonly countsAsConnection = true;
  cursor = 0;

  constructor(
    readonly socket: WebSocket,
    readonly attachment: SocketAttachment,
  ) {}

  get user(): UserRef {
    return this.attachment.user;
  }

  deliver(event: EncodedEvent): boolean {
    return this.sendText(event.wsFrame);
  }

  signal(signal: EncodedSignal): void {
    this.sendText(signal.wsFrame);
  }

  /** Sends a frame meant for this socket alone (welcome, ack, error, pong). */
  sendFrame(frame: ServerFrame): boolean {
    return this.sendText(JSON.stringify(frame));
  }

  close(code: number, reason: string): void {
    try {
      this.socket.close(code, reason);
    } catch {
      // already closed
    }
  }

  private sendText(text: string): boolean {
    try {
      this.socket.send(text);
    } catch {
      return false; // the socket is gone; the Hub drops it
    }
    if ((this.socket.bufferedAmount ?? 0) > MAX_BUFFERED_BYTES) {
      this.close(CLOSE_SLOW_CONSUMER, "too far behind: reconnect with ?after=<last seq>");
      return false;
    }
    return true;
  }
}
