/**
 * Who is in the room, kept from the welcome snapshot (or `GET presence`) and
 * the join / leave signals that follow.
 */
import type { UserRef } from "../../protocol/envelope.js";
import type { PresenceMember } from "../../protocol/frames.js";

export class PresenceList {
  readonly #members = new Map<string, PresenceMember>();

  /** Replaces the list; true when it changed. */
  sync(members: readonly PresenceMember[]): boolean {
    const before = this.#key();
    this.#members.clear();
    for (const member of members) this.#members.set(member.id, { id: member.id, name: member.name, connections: member.connections });
    return this.#key() !== before;
  }

  /** true when the user was not listed yet. */
  join(user: UserRef): boolean {
    if (this.#members.has(user.id)) return false;
    this.#members.set(user.id, { id: user.id, name: user.name, connections: 1 });
    return true;
  }

  /** true when the user was listed. */
  leave(user: UserRef): boolean {
    return this.#members.delete(user.id);
  }

  list(): PresenceMember[] {
    return [...this.#members.values()].map((member) => ({ ...member }));
  }

  #key(): string {
    return JSON.stringify([...this.#members.values()].map((m) => [m.id, m.name, m.connections]).sort());
  }
}
