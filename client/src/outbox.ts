/**
 * Sends that have not been acknowledged yet, in the order they were made.
 *
 * Every send gets a clientId when it is made and keeps it through every
 * retry, on every transport: the server accepts one message per (user,
 * clientId) and answers a repeat with the original, so a send whose ack was
 * lost (the socket died, the response never came) is retried without ever
 * being stored twice. One send is in flight at a time, so messages arrive in
 * the order they were sent even when some had to be retried; over a
 * WebSocket the frame is sent on the socket, otherwise it is POSTed.
 * While no transport is open, sends wait here.
 */
import type { Envelope, EventData } from "../../protocol/envelope.js";
import type { ServerFrame } from "../../protocol/frames.js";
import { Backoff } from "./backoff.js";
import { newClientId } from "./client-id.js";
import { RoomError, toRoomError } from "./errors.js";
import type { Transport } from "./transports/transport.js";

/** What `send()` resolves with: the message's place in the room. */
export interface Ack {
  seq: number;
  id: string;
  clientId: string;
}

export interface OutboxDriver {
  /** A transport is open: sends may go out. */
  ready(): boolean;
  /** The open transport that carries frames (a WebSocket), if that is what is open. */
  frameTransport(): Transport | undefined;
  sendHttp(data: EventData, clientId: string): Promise<Envelope>;
  /** A frame sent on `transport` was not acknowledged in time: the connection is presumed dead. */
  stale(transport: Transport): void;
}

interface PendingSend {
  clientId: string;
  data: EventData;
  resolve(ack: Ack): void;
  reject(error: RoomError): void;
  /** Where it is in flight right now, if it is. */
  via?: Transport | "http";
}

type Reply = Extract<ServerFrame, { type: "ack" | "error" }>;

export class Outbox {
  readonly #queue: PendingSend[] = [];
  readonly #retryBackoff = new Backoff({ initialMs: 500, maxMs: 10_000 });
  #inFlight?: PendingSend;
  #ackTimer?: ReturnType<typeof setTimeout>;
  #retryTimer?: ReturnType<typeof setTimeout>;

  constructor(
    private readonly driver: OutboxDriver,
    private readonly ackTimeoutMs: number,
  ) {}

  /** Sends waiting or in flight. */
  get size(): number {
    return this.#queue.length;
  }

  add(data: EventData, clientId = newClientId()): Promise<Ack> {
    return new Promise<Ack>((resolve, reject) => {
      this.#queue.push({ clientId, data, resolve, reject });
      this.pump();
    });
  }

  /** Sends the next waiting message, if a transport is open and nothing is in flight. */
  pump(): void {
    if (this.#inFlight || this.#retryTimer || !this.driver.ready()) return;
    const head = this.#queue[0];
    if (!head) return;
    this.#inFlight = head;
    const socket = this.driver.frameTransport();
    if (socket?.sendFrame({ type: "send", data: head.data, clientId: head.clientId })) {
      head.via = socket;
      this.#ackTimer = setTimeout(() => {
        if (this.#inFlight === head) this.driver.stale(socket);
      }, this.ackTimeoutMs);
      return;
    }
    head.via = "http";
    this.driver.sendHttp(head.data, head.clientId).then(
      (envelope) => this.#settle(head, { seq: envelope.seq, id: envelope.id, clientId: head.clientId }),
      (error) => this.#fail(head, toRoomError(error)),
    );
  }

  /** An ack or error frame from a WebSocket; true when it answered the send in flight there. */
  reply(transport: Transport, frame: Reply): boolean {
    const head = this.#inFlight;
    if (!head || head.via !== transport) return false;
    if (frame.type === "ack") {
      if (frame.clientId !== head.clientId) return false;
      this.#settle(head, { seq: frame.seq, id: frame.id, clientId: head.clientId });
      return true;
    }
    // The server cannot name the clientId of a frame too large to read; only send frames can be too large.
    if (frame.clientId !== head.clientId && !(frame.clientId === undefined && frame.code === "payload_too_large")) return false;
    this.#fail(head, new RoomError(frame.code, frame.message, undefined, frame.retryAfter));
    return true;
  }

  /** `transport` went away: a send in flight on it goes again, same clientId, on the next one. */
  transportDown(transport: Transport): void {
    const head = this.#inFlight;
    if (!head || head.via !== transport) return;
    clearTimeout(this.#ackTimer);
    head.via = undefined;
    this.#inFlight = undefined;
  }

  /** Rejects every waiting send (the room was closed, or can never connect). */
  failAll(error: RoomError): void {
    clearTimeout(this.#ackTimer);
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#inFlight = undefined;
    for (const pending of this.#queue.splice(0)) pending.reject(error);
  }

  #settle(item: PendingSend, ack: Ack): void {
    if (this.#inFlight !== item) return;
    clearTimeout(this.#ackTimer);
    this.#inFlight = undefined;
    this.#queue.shift();
    this.#retryBackoff.reset();
    item.resolve(ack);
    this.pump();
  }

  #fail(item: PendingSend, error: RoomError): void {
    if (this.#inFlight !== item) return;
    clearTimeout(this.#ackTimer);
    this.#inFlight = undefined;
    item.via = undefined;
    if (error.transient) {
      // The network, the server's own trouble, or a rate limit: the same send again later, same clientId.
      const delay = error.retryAfter !== undefined ? error.retryAfter * 1000 : this.#retryBackoff.next();
      this.#retryTimer = setTimeout(() => {
        this.#retryTimer = undefined;
        this.pump();
      }, delay);
      return;
    }
    this.#queue.shift();
    item.reject(error);
    this.pump();
  }
}
