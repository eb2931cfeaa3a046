/**
 * Unread messages: counted while you are not looking (chat minimized, tab
 * hidden, or scrolled up), shown on the badge and in the tab title, and
 * reported to the room as read as soon as you look again.
 */
import { byId } from "./dom.js";

export class UnreadCounter {
  readonly #badge = byId("unread");
  readonly #baseTitle = document.title;
  #count = 0;
  #room = "";

  setRoom(room: string): void {
    this.#room = room;
    this.reset();
  }

  add(): void {
    this.#count++;
    this.#render();
  }

  reset(): void {
    this.#count = 0;
    this.#render();
  }

  get count(): number {
    return this.#count;
  }

  #render(): void {
    this.#badge.hidden = this.#count === 0;
    this.#badge.textContent = this.#count > 99 ? "99+" : String(this.#count);
    this.#badge.setAttribute("aria-label", `${this.#count} unread message${this.#count === 1 ? "" : "s"}`);
    const room = this.#room ? `#${this.#room} · ` : "";
    document.title = `${this.#count > 0 ? `(${this.#count}) ` : ""}${room}${this.#baseTitle}`;
  }
}
