/**
 * `<rooms-chat>`: a chat for any page, on the client library. One element
 * connects to one room with tokens from the host app (`token-url`, fetched
 * with the page's cookies, or the `getToken` property), and renders the
 * launcher and the panel in a shadow root with the demo page's views.
 *
 * Attributes: `server` (default: where this script came from), `room`,
 * `token-url`, `title`, `position` (`bottom-right` | `bottom-left`),
 * `accent` (a CSS colour), `open`. Events: `message` (detail: the
 * envelope), `status` (detail: WidgetStatus), `unread` (detail: `{ count }`).
 */
import { openRoom, tokenFromUrl, type Envelope, type GetToken, type Room, type RoomSession, type RoomStatus } from "../src/index.js";
import { MessageList } from "../demo/message-list.js";
import { PresenceView } from "../demo/presence-view.js";
import { StatusView } from "../demo/status-view.js";
import { TypingView } from "../demo/typing-view.js";
import { checkOrigin } from "./origin-check.js";
import { TEMPLATE } from "./template.js";
import viewsCss from "../demo/views.css";
import css from "./widget.css";

/** The library's status, or why the widget could not start: no token from the host, this origin refused, attributes missing. */
export type WidgetStatus = RoomStatus | { state: "offline"; reason: "token" | "origin" | "config"; error: Error; retryInMs?: number };

const HISTORY_PAGE = 50;
/** The script's own origin: the service that served it, unless `server` says otherwise. */
const SCRIPT_ORIGIN = new URL(import.meta.url).origin;

let sheet: CSSStyleSheet | undefined;
function styles(): CSSStyleSheet {
  if (!sheet) {
    sheet = new CSSStyleSheet();
    sheet.replaceSync(viewsCss + css); // the shared views' rules first: the widget's own may refine them
  }
  return sheet;
}

export class RoomsChat extends HTMLElement {
  static readonly observedAttributes = ["server", "room", "token-url", "title", "position", "accent", "open"];

  readonly #shadow: ShadowRoot;
  readonly #messages: MessageList;
  readonly #status: StatusView;
  readonly #presence: PresenceView;
  readonly #typing: TypingView;
  #getToken?: GetToken;
  #session?: RoomSession;
  #room?: Room;
  #generation = 0;
  #restartQueued = false;
  #historyLoaded = false;
  #unread = 0;
  #retry?: () => void;
  /** Closed by the user (or `close()`): not connected until opened again. */
  #closed = false;
  readonly #onVisibility = () => this.#markReadIfLooking();

  constructor() {
    super();
    this.#shadow = this.attachShadow({ mode: "open" });
    this.#shadow.adoptedStyleSheets = [styles()];
    this.#shadow.innerHTML = TEMPLATE; // static markup: see template.ts
    this.#messages = new MessageList(this.#el<HTMLOListElement>("messages"), this.#el("scroller"), () => this.#room?.user);
    this.#status = new StatusView(this.#el("status"), this.#el("status-text"));
    this.#presence = new PresenceView(this.#el<HTMLUListElement>("presence"), this.#el("people-title"));
    this.#typing = new TypingView(this.#el("typing"));
    this.#wireControls();
  }

  /** A function returning (a promise of) a token, instead of `token-url`. */
  get getToken(): GetToken | undefined {
    return this.#getToken;
  }

  set getToken(fn: GetToken | undefined) {
    this.#getToken = fn;
    this.#restartSoon();
  }

  /** The room handle while connected (for apps that want more than the panel). */
  get room(): Room | undefined {
    return this.#room;
  }

  get unread(): number {
    return this.#unread;
  }

  connectedCallback(): void {
    // A page may set `getToken` before this script defined the element: that value sits on the
    // element itself and would hide the accessor. Take it over.
    if (Object.prototype.hasOwnProperty.call(this, "getToken")) {
      const early = (this as { getToken?: GetToken }).getToken;
      delete (this as { getToken?: GetToken }).getToken;
      this.#getToken = early;
    }
    this.#applyTitle();
    this.#applyAccent();
    this.#closed = false;
    this.#applyOpen(false);
    this.#restartSoon();
    document.addEventListener("visibilitychange", this.#onVisibility);
  }

  disconnectedCallback(): void {
    document.removeEventListener("visibilitychange", this.#onVisibility);
    this.#stop();
  }

  attributeChangedCallback(name: string, previous: string | null, value: string | null): void {
    if (previous === value) return;
    if (name === "title") this.#applyTitle();
    else if (name === "accent") this.#applyAccent();
    else if (name === "open") this.#applyOpen(false);
    else if (name !== "position") this.#restartSoon();
  }

  /** Opens the panel (and reconnects if it was closed). */
  show(): void {
    this.setAttribute("open", "");
  }

  /** Minimises the panel to the launcher; the chat stays connected and counts unread messages. */
  minimise(): void {
    this.removeAttribute("open");
  }

  /** Closes the panel and leaves the room until the launcher is used again. */
  close(): void {
    this.#closed = true;
    this.removeAttribute("open");
    this.#stop();
    this.#status.showText("offline", "Closed");
  }

  // ---- connecting ----

  #restartSoon(): void {
    if (this.#restartQueued || !this.isConnected) return;
    this.#restartQueued = true;
    queueMicrotask(() => {
      this.#restartQueued = false;
      if (this.isConnected) void this.#start();
    });
  }

  #stop(): void {
    this.#generation++;
    this.#session?.close();
    this.#session = undefined;
    this.#room = undefined;
    this.#historyLoaded = false;
    this.#messages.clear();
    this.#typing.clear();
    this.#presence.clear();
    this.#setUnread(0);
    this.#notice("");
    this.#setComposerEnabled(false);
  }

  async #start(): Promise<void> {
    this.#stop();
    const mine = this.#generation;
    const room = this.getAttribute("room");
    const server = (this.getAttribute("server") || SCRIPT_ORIGIN).replace(/\/+$/, "");
    const tokenUrl = this.getAttribute("token-url");
    const getToken = this.#getToken ?? (tokenUrl ? tokenFromUrl(new URL(tokenUrl, document.baseURI).href) : undefined);
    if (!room || !getToken) {
      const error = new Error(!room ? "The chat has no room attribute." : "The chat needs a token-url attribute or a getToken function.");
      return this.#failed({ state: "offline", reason: "config", error }, "Not set up");
    }
    this.#status.showText("connecting", "Connecting…");

    if ((await checkOrigin(server)) === "refused") {
      if (mine !== this.#generation) return;
      const error = new Error(`This site (${location.origin}) is not allowed to use the chat service at ${server}: its CORS_ORIGINS setting must list this origin.`);
      return this.#failed({ state: "offline", reason: "origin", error }, "Not allowed on this site", () => void this.#start());
    }
    if (mine !== this.#generation) return;

    let session: RoomSession;
    try {
      session = openRoom(room, { url: server, getToken });
    } catch (error) {
      return this.#failed({ state: "offline", reason: "config", error: error as Error }, "Not set up");
    }
    this.#session = session;
    session.on("tokenFailed", ({ error, retryInMs }) => {
      const seconds = Math.max(1, Math.round(retryInMs / 1000));
      const shown = new Error(`Cannot get a chat token: ${error.message}. Retrying in ${seconds} s.`);
      this.#failed({ state: "offline", reason: "token", error: shown, retryInMs }, "No chat token", () => session.retryToken());
    });
    session.ready.then((handle) => {
      if (mine === this.#generation) this.#watch(handle);
    }, () => undefined);
  }

  #failed(status: WidgetStatus & { error: Error }, short: string, retry?: () => void): void {
    this.#status.showText("offline", short);
    this.#notice(status.error.message, retry);
    this.#emit("status", status);
  }

  #watch(room: Room): void {
    this.#room = room;
    this.#notice("");
    this.#setComposerEnabled(true); // sends made while reconnecting wait in the library's outbox
    room.on("status", (status) => this.#onStatus(room, status));
    room.on("message", (envelope) => this.#onMessage(envelope));
    room.on("presence", ({ members }) => this.#presence.show(members, room.user));
    room.on("typing", ({ user }) => this.#typing.typing(user));
    room.on("read", ({ user, seq }) => this.#messages.setReader(user, seq));
    this.#onStatus(room, room.status);
  }

  #onStatus(room: Room, status: RoomStatus): void {
    if (room !== this.#room) return;
    this.#status.show(status);
    if (status.state === "connected") {
      this.#notice("");
      if (this.#isOpen) void this.#loadHistory(room);
    }
    if (status.state === "offline" && status.reason === "error") this.#notice(status.error?.message ?? "Cannot connect.");
    this.#emit("status", status);
  }

  async #loadHistory(room: Room): Promise<void> {
    if (this.#historyLoaded) return;
    this.#historyLoaded = true;
    try {
      const page = await room.history({ limit: HISTORY_PAGE });
      if (room !== this.#room) return;
      for (const envelope of page.messages) if (shown(envelope)) this.#messages.add(envelope);
      this.#messages.scrollToBottom();
      this.#markReadIfLooking();
    } catch {
      this.#historyLoaded = false; // try again on the next connection
    }
  }

  #onMessage(envelope: Envelope): void {
    if (envelope.from) {
      this.#typing.stopped(envelope.from.id);
      this.#presence.learnName(envelope.from);
    }
    if (!shown(envelope)) return;
    const wasAtBottom = this.#messages.atBottom();
    if (!this.#messages.add(envelope)) return;
    this.#emit("message", envelope);
    if (envelope.from && envelope.from.id === this.#room?.user?.id) return;
    if (this.#looking()) this.#markRead();
    else {
      this.#setUnread(this.#unread + 1);
      if (this.#isOpen && !wasAtBottom) this.#el("new-messages").hidden = false;
    }
  }

  // ---- reading ----

  get #isOpen(): boolean {
    return this.hasAttribute("open");
  }

  #looking(): boolean {
    return this.#isOpen && document.visibilityState === "visible" && this.#messages.atBottom();
  }

  #markReadIfLooking(): void {
    if (this.#looking()) this.#markRead();
  }

  #markRead(): void {
    this.#el("new-messages").hidden = true;
    this.#setUnread(0);
    const seq = this.#messages.newestSeq;
    if (seq > 0) this.#room?.read(seq);
  }

  #setUnread(count: number): void {
    if (count === this.#unread) return;
    this.#unread = count;
    const badge = this.#el("badge");
    badge.hidden = count === 0;
    badge.textContent = count > 99 ? "99+" : String(count);
    this.#renderLauncher();
    this.#emit("unread", { count });
  }

  // ---- the panel ----

  #applyOpen(focus: boolean): void {
    const open = this.#isOpen;
    this.#el("panel").hidden = !open;
    this.#renderLauncher();
    if (!open) return;
    if (this.#closed) {
      this.#closed = false; // opened again after a close: join again
      this.#restartSoon();
    }
    if (this.#room?.status.state === "connected") void this.#loadHistory(this.#room);
    this.#markReadIfLooking();
    if (focus) this.#el("input").focus();
  }

  #renderLauncher(): void {
    const launcher = this.#el("launcher");
    const open = this.#isOpen;
    const unread = this.#unread > 0 ? ` (${this.#unread} unread message${this.#unread === 1 ? "" : "s"})` : "";
    launcher.setAttribute("aria-expanded", String(open));
    launcher.setAttribute("aria-label", `${open ? "Minimise" : "Open"} ${this.getAttribute("title") || "chat"}${unread}`);
  }

  #applyTitle(): void {
    this.#el("title").textContent = this.getAttribute("title") || "Chat";
    this.#renderLauncher();
  }

  #applyAccent(): void {
    const accent = this.getAttribute("accent");
    const root = this.#el("panel").parentElement!;
    if (accent && CSS.supports("color", accent)) root.style.setProperty("--accent", accent);
    else root.style.removeProperty("--accent");
  }

  #notice(text: string, retry?: () => void): void {
    this.#el("notice-text").textContent = text;
    this.#el("notice").hidden = text === "";
    this.#retry = retry;
    this.#el("retry").hidden = !retry;
  }

  #wireControls(): void {
    const input = this.#el<HTMLTextAreaElement>("input");
    const launcher = this.#el("launcher");
    launcher.addEventListener("click", () => {
      if (this.#isOpen) return this.minimise();
      this.show();
      this.#applyOpen(true);
    });
    this.#el("minimise").addEventListener("click", () => {
      this.minimise();
      launcher.focus();
    });
    this.#el("close").addEventListener("click", () => {
      this.close();
      launcher.focus();
    });
    this.#el("panel").addEventListener("keydown", (event) => {
      if (event.key !== "Escape") return;
      this.minimise();
      launcher.focus();
    });
    this.#el("retry").addEventListener("click", () => this.#retry?.());
    this.#el("new-messages").addEventListener("click", () => {
      this.#messages.scrollToBottom();
      this.#markRead();
    });
    this.#el("scroller").addEventListener("scroll", () => {
      if (this.#messages.atBottom()) this.#markReadIfLooking();
    });
    input.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
      event.preventDefault();
      this.#el<HTMLFormElement>("composer").requestSubmit();
    });
    input.addEventListener("input", () => {
      this.#autosize(input);
      if (input.value.trim()) this.#room?.typing();
    });
    this.#el("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      const text = input.value.trim();
      const room = this.#room;
      if (!text || !room) return;
      const clientId = `w-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
      this.#messages.addPending(clientId, text);
      input.value = "";
      this.#autosize(input);
      room.send({ text }, { clientId }).catch((error: Error) => this.#messages.failed(clientId, error.message));
    });
  }

  /** Nothing can be sent before there is a room handle (no token yet, origin refused, closed). */
  #setComposerEnabled(enabled: boolean): void {
    this.#el<HTMLTextAreaElement>("input").disabled = !enabled;
    this.#el<HTMLButtonElement>("send").disabled = !enabled;
  }

  #autosize(input: HTMLTextAreaElement): void {
    input.style.height = "auto";
    input.style.height = `${input.scrollHeight + 2}px`;
  }

  #emit(type: "message" | "status" | "unread", detail: unknown): void {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }

  #el<T extends HTMLElement = HTMLElement>(id: string): T {
    return this.#shadow.getElementById(id) as T;
  }
}

/** The widget shows every event that carries text: chat messages and server notifications alike. */
function shown(envelope: Envelope): boolean {
  return typeof envelope.data.text === "string" && envelope.data.text !== "";
}
