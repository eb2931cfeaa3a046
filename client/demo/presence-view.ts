/**
 * The "Here now" strip: one chip per person in the room, you first.
 * Presence keeps the name a person had when they arrived (as Pusher does),
 * so a name learned later (your own after renaming, someone's from their
 * latest message) wins.
 */
import type { PresenceMember, UserRef } from "../src/index.js";
import { el } from "./dom.js";

export class PresenceView {
  readonly #names = new Map<string, string>();
  #members: PresenceMember[] = [];
  #me?: UserRef;

  /** `list` gets one item per person; `title` says how many ("Here now (3)"). */
  constructor(
    private readonly list: HTMLUListElement,
    private readonly title: HTMLElement,
  ) {}

  show(members: PresenceMember[], me: UserRef | undefined): void {
    this.#members = members;
    this.#me = me;
    this.#render();
  }

  /** The latest name a user goes by (from their messages). */
  learnName(user: UserRef): void {
    if (this.#names.get(user.id) === user.name) return;
    this.#names.set(user.id, user.name);
    this.#render();
  }

  clear(): void {
    this.#members = [];
    this.#names.clear();
    this.#render();
  }

  #render(): void {
    const me = this.#me;
    const name = (member: PresenceMember) => (member.id === me?.id ? me.name : (this.#names.get(member.id) ?? member.name));
    const sorted = [...this.#members].sort((a, b) => (a.id === me?.id ? -1 : b.id === me?.id ? 1 : name(a).localeCompare(name(b))));
    this.list.replaceChildren(
      ...sorted.map((member) =>
        el("li", { className: member.id === me?.id ? "me" : "", text: member.id === me?.id ? `${name(member)} (you)` : name(member), attrs: { "data-user": member.id } }),
      ),
    );
    this.title.textContent = this.#members.length > 0 ? `Here now (${this.#members.length})` : "Here now";
  }
}
