/** The connection line under the room name: state, transport, and a countdown to the next try (the demo page and the widget). */
import type { RoomStatus, TransportKind } from "../src/index.js";

const TRANSPORT_NAMES: Record<TransportKind, string> = { websocket: "WebSocket", sse: "SSE", longpoll: "Long-poll" };

export function transportName(kind: TransportKind): string {
  return TRANSPORT_NAMES[kind];
}

export class StatusView {
  #ticker?: ReturnType<typeof setInterval>;

  /** `root` carries data-state and data-transport (for styling); `text` shows the words. */
  constructor(
    readonly root: HTMLElement,
    readonly text: HTMLElement,
  ) {}

  show(status: RoomStatus): void {
    clearInterval(this.#ticker);
    this.root.dataset.state = status.state;
    if (status.state === "connected") this.root.dataset.transport = status.transport;
    else delete this.root.dataset.transport;
    const retryInMs = "retryInMs" in status ? status.retryInMs : undefined;
    if (retryInMs === undefined) {
      this.text.textContent = describe(status);
      return;
    }
    const retryAt = Date.now() + retryInMs;
    const render = () => (this.text.textContent = describe(status, Math.max(0, retryAt - Date.now())));
    render();
    this.#ticker = setInterval(render, 1000);
  }

  /** Before there is a room handle (while a token is fetched, or when none can be). */
  showText(state: string, text: string): void {
    clearInterval(this.#ticker);
    this.root.dataset.state = state;
    delete this.root.dataset.transport;
    this.text.textContent = text;
  }
}

function describe(status: RoomStatus, retryInMs?: number): string {
  const retry = retryInMs === undefined ? "" : retryInMs < 1000 ? " now" : ` in ${Math.ceil(retryInMs / 1000)} s`;
  switch (status.state) {
    case "connecting":
      return retry ? `Cannot connect yet, retrying${retry}…` : `Connecting (${transportName(status.transport)})…`;
    case "connected":
      return `Connected · ${transportName(status.transport)}`;
    case "reconnecting":
      return retry ? `Connection lost, reconnecting${retry}…` : `Reconnecting (${transportName(status.transport)})…`;
    case "offline":
      if (status.reason === "network") return "Offline: waiting for the network";
      if (status.reason === "closed") return "Disconnected";
      return `Offline: ${status.error?.message ?? "cannot connect"}`;
  }
}
