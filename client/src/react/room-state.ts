/**
 * What `useRoom` renders: an immutable snapshot of one room session
 * (messages in seq order, status, presence, who is typing), replaced on
 * every change so React's `useSyncExternalStore` sees it. The newest page
 * of history is merged in on the first connection.
 */
import type { Envelope, UserRef } from "../../../protocol/envelope.js";
import type { PresenceMember } from "../../../protocol/frames.js";
import type { RoomStatus } from "../events.js";
import type { Room } from "../room.js";
import type { RoomSession } from "../session.js";
import type { TransportKind } from "../transports/transport.js";

export interface RoomSnapshot {
  /** Every event of the room (chat messages and server events), in seq order, each once: the newest history page, then live. */
  messages: readonly Envelope[];
  status: RoomStatus["state"];
  /** The transport in use while connected. */
  transport?: TransportKind;
  /** Why it is not connected, when known (a failing token source, a refused room…). */
  error?: Error;
  presence: readonly PresenceMember[];
  /** Others typing now. */
  typing: readonly UserRef[];
  /** You, as the token names you. */
  user?: UserRef;
}

export const INITIAL_SNAPSHOT: RoomSnapshot = Object.freeze({ messages: [], status: "connecting", presence: [], typing: [] });

/** A typist is shown this long after their last signal, unless they send first. */
const TYPING_SHOWN_MS = 4000;

export class RoomState {
  #snapshot: RoomSnapshot = INITIAL_SNAPSHOT;
  readonly #listeners = new Set<() => void>();
  readonly #typists = new Map<string, { user: UserRef; timer: ReturnType<typeof setTimeout> }>();
  readonly #offs: (() => void)[] = [];
  #historyAsked = false;

  constructor(
    session: RoomSession,
    private readonly historyLimit: number,
  ) {
    this.#offs.push(session.on("tokenFailed", ({ error }) => this.#set({ status: "connecting", transport: undefined, error })));
    if (session.room) this.#watch(session.room);
    else this.#offs.push(session.on("room", (room) => this.#watch(room)));
  }

  get snapshot(): RoomSnapshot {
    return this.#snapshot;
  }

  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  close(): void {
    for (const off of this.#offs.splice(0)) off();
    for (const { timer } of this.#typists.values()) clearTimeout(timer);
    this.#typists.clear();
  }

  #watch(room: Room): void {
    this.#offs.push(
      room.on("status", (status) => this.#onStatus(room, status)),
      room.on("message", (envelope) => this.#onMessage(envelope)),
      room.on("presence", ({ members }) => this.#set({ presence: members })),
      room.on("typing", ({ user }) => this.#onTyping(user)),
    );
    this.#onStatus(room, room.status);
  }

  #onStatus(room: Room, status: RoomStatus): void {
    const error = "error" in status ? status.error : undefined;
    this.#set({ status: status.state, transport: status.state === "connected" ? status.transport : undefined, error, user: room.user });
    if (status.state !== "connected" || this.#historyAsked || this.historyLimit <= 0) return;
    this.#historyAsked = true;
    room.history({ limit: this.historyLimit }).then(
      (page) => this.#merge(page.messages),
      () => undefined, // history is a nicety: live messages still arrive
    );
  }

  #onMessage(envelope: Envelope): void {
    if (envelope.from) this.#stopTyping(envelope.from.id);
    this.#merge([envelope]);
  }

  #merge(incoming: Envelope[]): void {
    const current = this.#snapshot.messages;
    const last = current[current.length - 1];
    let messages: Envelope[];
    if (incoming.length === 1 && (!last || incoming[0]!.seq > last.seq)) {
      messages = [...current, incoming[0]!];
    } else {
      const bySeq = new Map(current.map((m) => [m.seq, m]));
      for (const m of incoming) if (!bySeq.has(m.seq)) bySeq.set(m.seq, m);
      if (bySeq.size === current.length) return;
      messages = [...bySeq.values()].sort((a, b) => a.seq - b.seq);
    }
    this.#set({ messages });
  }

  #onTyping(user: UserRef): void {
    clearTimeout(this.#typists.get(user.id)?.timer);
    this.#typists.set(user.id, { user, timer: setTimeout(() => this.#stopTyping(user.id), TYPING_SHOWN_MS) });
    this.#set({ typing: [...this.#typists.values()].map((t) => t.user) });
  }

  #stopTyping(userId: string): void {
    const typist = this.#typists.get(userId);
    if (!typist) return;
    clearTimeout(typist.timer);
    this.#typists.delete(userId);
    this.#set({ typing: [...this.#typists.values()].map((t) => t.user) });
  }

  #set(change: Partial<RoomSnapshot>): void {
    this.#snapshot = { ...this.#snapshot, ...change };
    for (const listener of [...this.#listeners]) listener();
  }
}
