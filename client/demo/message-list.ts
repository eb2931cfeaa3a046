/**
 * The message list: envelopes in seq order (history and live mixed, each
 * shown once), your own unsent messages at the end until the server takes
 * them, sender and time on the first message of a run, read receipts under
 * your messages, and auto-scroll when you are at the bottom.
 */
import type { Envelope, UserRef } from "../src/index.js";
import { el, listNames, timeElement } from "./dom.js";

/** Messages from one sender closer than this share one header. */
const RUN_GAP_MS = 5 * 60_000;
/** Within this many pixels of the bottom counts as "at the bottom". */
const BOTTOM_SLACK_PX = 40;

export class MessageList {
  readonly #shown = new Map<number, HTMLLIElement>();
  readonly #pending = new Map<string, HTMLLIElement>();
  readonly #readers = new Map<string, { name: string; seq: number }>();
  readonly #empty: HTMLParagraphElement;

  constructor(
    private readonly list: HTMLOListElement,
    private readonly scroller: HTMLElement,
    private readonly me: () => UserRef | undefined,
  ) {
    this.#empty = el("p", { className: "empty", text: "No messages yet. Say hello!" });
    scroller.append(this.#empty);
  }

  get newestSeq(): number {
    let newest = 0;
    for (const seq of this.#shown.keys()) newest = Math.max(newest, seq);
    return newest;
  }

  get oldestSeq(): number | undefined {
    let oldest: number | undefined;
    for (const seq of this.#shown.keys()) oldest = oldest === undefined ? seq : Math.min(oldest, seq);
    return oldest;
  }

  atBottom(): boolean {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight <= BOTTOM_SLACK_PX;
  }

  scrollToBottom(): void {
    this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  clear(): void {
    this.list.replaceChildren();
    this.#shown.clear();
    this.#pending.clear();
    this.#readers.clear();
    this.#updateEmpty();
  }

  /** Shows an envelope in its place; false when it is already shown. */
  add(envelope: Envelope): boolean {
    if (this.#shown.has(envelope.seq)) return false;
    const stick = this.atBottom();
    const mine = !!envelope.from && envelope.from.id === this.me()?.id;
    let item = mine && envelope.clientId ? this.#pending.get(envelope.clientId) : undefined;
    if (item) {
      // Our own message came back from the server: it is no longer pending.
      this.#pending.delete(envelope.clientId!);
      item.classList.remove("pending", "failed");
      item.querySelector(".note")?.remove();
      item.dataset.ts = envelope.ts;
      item.querySelector("time")?.replaceWith(timeElement(envelope.ts));
    } else {
      item = this.#render(envelope, mine);
    }
    item.dataset.seq = String(envelope.seq);
    this.#shown.set(envelope.seq, item);
    this.list.insertBefore(item, this.#firstAfter(envelope.seq));
    this.#regroup(item);
    this.#regroup(item.nextElementSibling);
    this.#updateEmpty();
    if (mine) this.#renderReceipts();
    if (stick || mine) this.scrollToBottom();
    return true;
  }

  /** Shows a message of ours that the server has not acknowledged yet. */
  addPending(clientId: string, text: string): void {
    const me = this.me();
    const item = this.#render({ room: "", seq: 0, id: "", event: "message", from: me ?? { id: "", name: "You" }, data: { text }, ts: new Date().toISOString() }, true);
    item.classList.add("pending");
    item.append(el("span", { className: "note", text: "Sending…" }));
    this.#pending.set(clientId, item);
    this.list.append(item);
    this.#regroup(item);
    this.#updateEmpty();
    this.scrollToBottom();
  }

  /** The server refused a message of ours. */
  failed(clientId: string, reason: string): void {
    const item = this.#pending.get(clientId);
    if (!item) return;
    this.#pending.delete(clientId);
    item.classList.remove("pending");
    item.classList.add("failed");
    const note = item.querySelector(".note") ?? item.appendChild(el("span", { className: "note" }));
    note.textContent = `Not sent: ${reason}`;
  }

  /** Someone read up to `seq`: "Seen by …" moves under your last message they have read. */
  setReader(user: UserRef, seq: number): void {
    if (user.id === this.me()?.id) return;
    const previous = this.#readers.get(user.id);
    if (previous && previous.seq >= seq) return;
    this.#readers.set(user.id, { name: user.name, seq });
    this.#renderReceipts();
  }

  #render(envelope: Envelope, mine: boolean): HTMLLIElement {
    const system = !envelope.from;
    const sender = envelope.from?.name ?? "Server";
    const text = typeof envelope.data.text === "string" && !system ? envelope.data.text : describeEvent(envelope);
    const item = el(
      "li",
      { className: `message${mine ? " mine" : ""}${system ? " system" : ""}`, attrs: { "data-sender": envelope.from?.id ?? "", "data-ts": envelope.ts } },
      el("div", { className: "meta" }, el("span", { className: "sender", text: mine ? "You" : sender }), timeElement(envelope.ts)),
      el("div", { className: "bubble", text }),
    );
    return item;
  }

  /** The first shown item with a greater seq, or the first pending one: where `seq` goes. */
  #firstAfter(seq: number): Element | null {
    for (const child of Array.from(this.list.children)) {
      const other = (child as HTMLElement).dataset.seq;
      if (other === undefined || Number(other) > seq) return child;
    }
    return null;
  }

  /** A message starts a run (and shows its header) unless the previous one is the same sender's, recent. */
  #regroup(item: Element | null): void {
    if (!(item instanceof HTMLElement)) return;
    const previous = item.previousElementSibling as HTMLElement | null;
    const sameRun =
      !!previous &&
      !item.classList.contains("system") &&
      previous.dataset.sender === item.dataset.sender &&
      Math.abs(Date.parse(item.dataset.ts ?? "") - Date.parse(previous.dataset.ts ?? "")) < RUN_GAP_MS;
    item.classList.toggle("first", !sameRun);
    const meta = item.querySelector<HTMLElement>(".meta");
    if (meta) meta.hidden = sameRun;
  }

  #renderReceipts(): void {
    for (const note of Array.from(this.list.querySelectorAll(".receipt"))) note.remove();
    const mine = [...this.#shown.entries()].filter(([, item]) => item.classList.contains("mine")).sort(([a], [b]) => a - b);
    const byMessage = new Map<HTMLLIElement, string[]>();
    for (const reader of this.#readers.values()) {
      let target: HTMLLIElement | undefined;
      for (const [seq, item] of mine) if (seq <= reader.seq) target = item;
      if (target) byMessage.set(target, [...(byMessage.get(target) ?? []), reader.name]);
    }
    for (const [item, names] of byMessage) item.append(el("span", { className: "note receipt", text: `Seen by ${listNames(names.sort())}` }));
  }

  #updateEmpty(): void {
    this.#empty.hidden = this.list.children.length > 0;
  }
}

/** Server events (no sender) as one line of text. */
function describeEvent(envelope: Envelope): string {
  const text = typeof envelope.data.text === "string" ? envelope.data.text : JSON.stringify(envelope.data);
  return envelope.event === "message" ? text : `${envelope.event}: ${text}`;
}
