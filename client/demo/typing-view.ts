/** "Alice is typing…": each typist shown until they send, or for a few seconds after their last signal. */
import type { UserRef } from "../src/index.js";
import { listNames } from "./dom.js";

const SHOW_FOR_MS = 4000;

export class TypingView {
  constructor(private readonly line: HTMLElement) {}

  readonly #typists = new Map<string, { name: string; timer: ReturnType<typeof setTimeout> }>();

  typing(user: UserRef): void {
    clearTimeout(this.#typists.get(user.id)?.timer);
    this.#typists.set(user.id, { name: user.name, timer: setTimeout(() => this.stopped(user.id), SHOW_FOR_MS) });
    this.#render();
  }

  stopped(userId: string): void {
    const typist = this.#typists.get(userId);
    if (!typist) return;
    clearTimeout(typist.timer);
    this.#typists.delete(userId);
    this.#render();
  }

  clear(): void {
    for (const id of [...this.#typists.keys()]) this.stopped(id);
  }

  #render(): void {
    const names = [...this.#typists.values()].map((t) => t.name);
    this.line.textContent = names.length === 0 ? "" : `${listNames(names)} ${names.length === 1 ? "is" : "are"} typing…`;
  }
}
