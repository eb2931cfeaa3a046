/**
 * The demo chat page: wires the client library (client/src) to the widget
 * in client/public/index.html. Query parameters: `?room=` picks the room
 * (default `lobby`), `?transport=websocket|sse|longpoll` starts on that
 * transport instead of WebSocket (SSE still falls back to long-poll).
 * "Enable notifications" subscribes this browser to Web Push for the demo
 * user (./push-notifications.ts, /sw.js).
 */
import { connect, type Envelope, type Room, type TransportKind } from "../src/index.js";
import { DevTokenUnavailable, mintDevToken } from "./dev-token.js";
import { byId } from "./dom.js";
import { loadIdentity, saveIdentity } from "./identity.js";
import { MessageList } from "./message-list.js";
import { PresenceView } from "./presence-view.js";
import { PushNotifications } from "./push-notifications.js";
import { Chime } from "./sound.js";
import { StatusView } from "./status-view.js";
import { TypingView } from "./typing-view.js";
import { UnreadCounter } from "./unread.js";

const ROOM_PATTERN = /^[A-Za-z0-9_\-=@,.;:]{1,164}$/;
const HISTORY_PAGE = 50;

const TRANSPORTS: Record<string, TransportKind[]> = {
  websocket: ["websocket"],
  sse: ["sse", "longpoll"],
  longpoll: ["longpoll"],
};

const params = new URLSearchParams(location.search);
const transportParam = params.get("transport") ?? "";
const transports = TRANSPORTS[transportParam];
let roomName = ROOM_PATTERN.test(params.get("room") ?? "") ? params.get("room")! : "lobby";
const identity = loadIdentity();

const chat = byId("chat");
const roomTitle = byId("room-title");
const minimizeButton = byId<HTMLButtonElement>("minimize");
const settings = byId<HTMLFormElement>("settings");
const roomInput = byId<HTMLInputElement>("room-input");
const nameInput = byId<HTMLInputElement>("name-input");
const scroller = byId("scroller");
const olderButton = byId<HTMLButtonElement>("load-older");
const composer = byId<HTMLFormElement>("composer");
const input = byId<HTMLTextAreaElement>("message-input");
const notice = byId("notice");

let room: Room | undefined;
let generation = 0;
let minimized = false;

const messages = new MessageList(byId<HTMLOListElement>("messages"), scroller, () => room?.user);
const status = new StatusView(byId("status"), byId("status-text"));
const presence = new PresenceView(byId<HTMLUListElement>("presence"), byId("people-title"));
const typing = new TypingView(byId("typing"));
const unread = new UnreadCounter();
const chime = new Chime();

roomInput.value = roomName;
nameInput.value = identity.name;
for (const link of Array.from(document.querySelectorAll<HTMLAnchorElement>("[data-transport-link]"))) {
  const kind = link.dataset.transportLink ?? "";
  const url = new URL(location.href);
  if (kind) url.searchParams.set("transport", kind);
  else url.searchParams.delete("transport");
  url.searchParams.set("room", roomName);
  link.href = url.pathname + url.search;
  if (kind === (transports ? transportParam : "")) link.setAttribute("aria-current", "true");
}

// ---- joining a room ----

async function join(): Promise<void> {
  const mine = ++generation;
  room?.close();
  room = undefined;
  messages.clear();
  typing.clear();
  presence.clear();
  unread.setRoom(roomName);
  olderButton.hidden = true;
  roomTitle.textContent = `#${roomName}`;
  showNotice("");
  status.showText("connecting", "Getting a token…");

  let token: string;
  try {
    token = await mintDevToken(identity.id, identity.name);
  } catch (error) {
    if (mine !== generation) return;
    status.showText("offline", error instanceof DevTokenUnavailable ? "No token" : "Cannot get a token");
    showNotice(error instanceof Error ? error.message : String(error));
    return;
  }
  if (mine !== generation) return;

  const handle = connect(roomName, {
    token,
    ...(transports ? { transports } : {}),
    refreshToken: () => mintDevToken(identity.id, identity.name),
  });
  room = handle;
  let historyLoaded = false;

  handle.on("status", (next) => {
    status.show(next);
    if (next.state === "connected") {
      showNotice("");
      if (!historyLoaded) {
        historyLoaded = true;
        void loadHistory(handle);
      }
    }
    if (next.state === "offline" && next.reason === "error") showNotice(next.error?.message ?? "Cannot connect.");
  });
  handle.on("message", (envelope) => onMessage(envelope));
  handle.on("presence", (event) => presence.show(event.members, handle.user));
  handle.on("typing", ({ user }) => typing.typing(user));
  handle.on("read", ({ user, seq }) => messages.setReader(user, seq));
  handle.on("error", (error) => console.warn(`chat: ${error.code}: ${error.message}`));
  status.show(handle.status);
}

async function loadHistory(handle: Room): Promise<void> {
  try {
    const page = await handle.history({ limit: HISTORY_PAGE });
    if (handle !== room) return;
    for (const envelope of page.messages) messages.add(envelope);
    olderButton.hidden = !page.hasMore;
    messages.scrollToBottom();
    markReadIfLooking();
  } catch (error) {
    console.warn("chat: history:", error);
  }
}

async function loadOlder(): Promise<void> {
  const handle = room;
  const before = messages.oldestSeq;
  if (!handle || before === undefined) return;
  olderButton.disabled = true;
  try {
    const page = await handle.history({ before, limit: HISTORY_PAGE });
    if (handle !== room) return;
    const fromBottom = scroller.scrollHeight - scroller.scrollTop;
    for (const envelope of page.messages) messages.add(envelope);
    scroller.scrollTop = scroller.scrollHeight - fromBottom; // keep what you were reading in place
    olderButton.hidden = !page.hasMore;
  } catch (error) {
    console.warn("chat: history:", error);
  } finally {
    olderButton.disabled = false;
  }
}

function onMessage(envelope: Envelope): void {
  if (!messages.add(envelope)) return;
  const fromOther = envelope.from?.id !== room?.user?.id;
  if (envelope.from) {
    typing.stopped(envelope.from.id);
    presence.learnName(envelope.from);
  }
  if (!fromOther) return;
  if (looking()) markRead();
  else unread.add();
  if (document.visibilityState === "hidden") chime.play();
}

// ---- reading ----

function looking(): boolean {
  return !minimized && document.visibilityState === "visible" && messages.atBottom();
}

function markRead(): void {
  unread.reset();
  const seq = messages.newestSeq;
  if (seq > 0) room?.read(seq);
}

function markReadIfLooking(): void {
  if (looking()) markRead();
}

let scrollQueued = false;
scroller.addEventListener("scroll", () => {
  if (scrollQueued) return;
  scrollQueued = true;
  requestAnimationFrame(() => {
    scrollQueued = false;
    markReadIfLooking();
  });
});
document.addEventListener("visibilitychange", markReadIfLooking);
olderButton.addEventListener("click", () => void loadOlder());

// ---- the widget's controls ----

minimizeButton.addEventListener("click", () => {
  minimized = !minimized;
  chat.classList.toggle("minimized", minimized);
  minimizeButton.setAttribute("aria-expanded", String(!minimized));
  minimizeButton.setAttribute("aria-label", minimized ? "Expand chat" : "Minimize chat");
  minimizeButton.title = minimized ? "Expand" : "Minimize";
  if (!minimized) {
    messages.scrollToBottom();
    markReadIfLooking();
    input.focus();
  }
});

settings.addEventListener("submit", (event) => {
  event.preventDefault();
  const nextRoom = roomInput.value.trim();
  const nextName = nameInput.value.trim();
  if (!ROOM_PATTERN.test(nextRoom)) {
    roomInput.setCustomValidity("Letters, digits and _-=@,.;: only, up to 164");
    roomInput.reportValidity();
    return;
  }
  roomInput.setCustomValidity("");
  if (!nextName) return nameInput.reportValidity();
  if (nextRoom === roomName && nextName === identity.name && room) return;
  roomName = nextRoom;
  identity.name = nextName.slice(0, 64);
  saveIdentity(identity);
  const url = new URL(location.href);
  url.searchParams.set("room", roomName);
  history.replaceState(null, "", url);
  void join();
});
roomInput.addEventListener("input", () => roomInput.setCustomValidity(""));

input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    composer.requestSubmit();
  }
});
input.addEventListener("input", () => {
  autosize();
  if (input.value.trim()) room?.typing();
});

composer.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = input.value.trim();
  const handle = room;
  if (!text || !handle) return;
  const clientId = `c-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
  messages.addPending(clientId, text);
  input.value = "";
  autosize();
  handle.send({ text }, { clientId }).catch((error: Error) => messages.failed(clientId, error.message));
});

function autosize(): void {
  input.style.height = "auto";
  input.style.height = `${input.scrollHeight + 2}px`;
}

function showNotice(text: string): void {
  notice.textContent = text;
  notice.hidden = text === "";
}

void join();
void new PushNotifications(byId("push-row"), byId<HTMLButtonElement>("push-toggle"), byId("push-note"), () => mintDevToken(identity.id, identity.name))
  .start()
  .catch((error) => console.warn("chat: notifications:", error));

