/**
 * Who is in the room. A user is present while they hold at least one
 * WebSocket or SSE stream, or have long-polled within the last 30 s. One user
 * with three tabs is one member with three connections.
 *
 * `join` is announced when a user's first connection arrives and `leave` when
 * their last one has been gone for a short grace period, so a client that
 * reconnects quickly (a page reload, a network blip) does not flap.
 */
import type { UserRef } from "../../protocol/envelope";
import type { PresenceMember } from "../../protocol/frames";
import { EncodedSignal } from "./encoded-signal";

/** How long a long-poll keeps its user present after it ends. */
export const POLL_PRESENCE_MS = 30_000;

interface Member {
  user: UserRef;
  /** Live WebSocket and SSE connections. */
  connections: number;
  /** Until when a recent long-poll keeps the user present (0: no poll). */
  polledUntil: number;
  leaveTimer?: ReturnType<typeof setTimeout>;
}

export class Presence {
  readonly #members = new Map<string, Member>();
  #pollSweep?: ReturnType<typeof setTimeout>;

  constructor(
    private readonly announce: (signal: EncodedSignal) => void,
    private readonly graceMs: number,
  ) {}

  /** A WebSocket or SSE connection of `user` arrived. */
  connected(user: UserRef): void {
    const member = this.#members.get(user.id);
    if (member) {
      member.connections++;
      if (member.leaveTimer) {
        clearTimeout(member.leaveTimer); // came back within the grace period: no leave, no join
        member.leaveTimer = undefined;
      }
      return;
    }
    this.#members.set(user.id, { user, connections: 1, polledUntil: 0 });
    this.#announce("join", user);
  }

  /** A connection found on wake from hibernation: counted, not announced. */
  restored(user: UserRef): void {
    const member = this.#members.get(user.id);
    if (member) member.connections++;
    else this.#members.set(user.id, { user, connections: 1, polledUntil: 0 });
  }

  /** A WebSocket or SSE connection of `user` ended. */
  disconnected(user: UserRef): void {
    const member = this.#members.get(user.id);
    if (!member) return;
    member.connections = Math.max(0, member.connections - 1);
    if (member.connections === 0 && !member.leaveTimer) {
      member.leaveTimer = setTimeout(() => {
        member.leaveTimer = undefined;
        this.#leaveIfGone(member);
      }, this.graceMs);
    }
  }

  /** `user` long-polled (or is holding a long-poll until `until`). */
  polled(user: UserRef, now: number, holdMs = 0): void {
    const until = now + holdMs + POLL_PRESENCE_MS;
    const member = this.#members.get(user.id);
    if (member) {
      member.polledUntil = Math.max(member.polledUntil, until);
    } else {
      this.#members.set(user.id, { user, connections: 0, polledUntil: until });
      this.#announce("join", user);
    }
    this.#schedulePollSweep(now);
  }

  /** Members, the way `welcome.presence` and `GET /presence` show them. */
  members(now: number): PresenceMember[] {
    const list: PresenceMember[] = [];
    for (const member of this.#members.values()) {
      const polling = member.polledUntil > now ? 1 : 0;
      if (member.connections + polling === 0 && !member.leaveTimer) continue;
      list.push({ id: member.user.id, name: member.user.name, connections: Math.max(1, member.connections + polling) });
    }
    return list;
  }

  /** Is `userId` connected right now on any transport? */
  isPresent(userId: string, now: number): boolean {
    const member = this.#members.get(userId);
    return !!member && (member.connections > 0 || member.polledUntil > now);
  }

  /** Until when someone is present: Infinity while anyone holds a connection, the last poll's window otherwise, 0 for no one. */
  presentUntil(now: number): number {
    let until = 0;
    for (const member of this.#members.values()) {
      if (member.connections > 0) return Infinity;
      if (member.polledUntil > now) until = Math.max(until, member.polledUntil);
    }
    return until;
  }

  /** Whether `userId` is a member: connected, polling, or within the grace after their last connection. */
  knows(userId: string): boolean {
    return this.#members.has(userId);
  }

  #leaveIfGone(member: Member): void {
    const now = Date.now();
    if (member.connections > 0 || member.polledUntil > now || member.leaveTimer) return;
    this.#members.delete(member.user.id);
    this.#announce("leave", member.user);
  }

  #schedulePollSweep(now: number): void {
    if (this.#pollSweep) return;
    let next = Infinity;
    for (const member of this.#members.values()) {
      if (member.polledUntil > now) next = Math.min(next, member.polledUntil);
    }
    if (next === Infinity) return;
    this.#pollSweep = setTimeout(() => {
      this.#pollSweep = undefined;
      const at = Date.now();
      for (const member of [...this.#members.values()]) {
        if (member.polledUntil !== 0 && member.polledUntil <= at) this.#leaveIfGone(member);
      }
      this.#schedulePollSweep(at);
    }, Math.max(0, next - now) + 10);
  }

  #announce(action: "join" | "leave", user: UserRef): void {
    this.announce(new EncodedSignal({ type: "presence", action, user: { id: user.id, name: user.name } }));
  }
}
