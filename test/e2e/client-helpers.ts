/**
 * Helpers for the client library's end-to-end tests: recording a room's
 * events, waiting for a condition, and WebSocket / EventSource
 * implementations that misbehave on purpose (refused routes, duplicated
 * frames, lost acks) to inject through `connect()`'s options.
 */
import { EventSource } from "eventsource";
import type { ConnectOptions, Envelope, EventSourceConstructor, Room, RoomStatus, WebSocketConstructor, WebSocketLike } from "../../client/src/index.ts";
import { connect } from "../../client/src/index.ts";

/** Waits until `check` returns something truthy, re-checking every 20 ms. */
export async function eventually<T>(check: () => T | undefined | null | false, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface Recorded {
  room: Room;
  messages: Envelope[];
  statuses: RoomStatus[];
  errors: Error[];
  /** The `data.text` of every message, in order. */
  texts(): string[];
  seqs(): number[];
}

/** Connects with fast test timings and records everything the room emits. */
export function record(room: Room): Recorded {
  const recorded: Recorded = {
    room,
    messages: [],
    statuses: [],
    errors: [],
    texts: () => recorded.messages.map((m) => String(m.data.text)),
    seqs: () => recorded.messages.map((m) => m.seq),
  };
  room.on("message", (m) => recorded.messages.push(m));
  room.on("status", (s) => recorded.statuses.push(s));
  room.on("error", (e) => recorded.errors.push(e));
  return recorded;
}

/** Node has no EventSource: the `eventsource` package's. */
export const NodeEventSource = EventSource as unknown as EventSourceConstructor;

export function open(base: string, room: string, options: Partial<ConnectOptions> & { token: string }): Recorded {
  return record(
    connect(room, {
      url: base,
      EventSource: NodeEventSource,
      backoff: { initialMs: 100, maxMs: 1000 },
      stableAfterMs: 1000,
      connectTimeoutMs: 5000,
      pollWaitSeconds: 5,
      ...options,
    }),
  );
}

/** Waits for a connection attempt that began at or after status number `since` to fail (a status announcing a retry). */
export function attemptFailed(r: Recorded, since: number, what: string): Promise<unknown> {
  return eventually(() => r.statuses.slice(since).some((s) => s.state !== "connected" && s.state !== "offline" && s.retryInMs !== undefined), `${what}: a failed connection attempt`);
}

export function waitConnected(r: Recorded, transport?: string, timeoutMs?: number): Promise<unknown> {
  return eventually(
    () => r.room.status.state === "connected" && (!transport || r.room.transport === transport),
    `${r.room.name} connected${transport ? ` over ${transport}` : ""} (status ${JSON.stringify(r.room.status)})`,
    timeoutMs,
  );
}

/** Checks the listener contract: seqs strictly increase by one, none repeated. */
export function expectGapFree(seqs: number[]): void {
  for (let i = 1; i < seqs.length; i++) {
    if (seqs[i] !== seqs[i - 1]! + 1) throw new Error(`seqs not contiguous at ${i}: ${seqs.join(",")}`);
  }
}

/**
 * A WebSocket built on Node's, with hooks: `url` rewrites where it connects
 * (to refuse the route), `incoming` sees every frame from the server and
 * decides what the client gets (duplicate it, drop it, kill the socket).
 */
export function hookedWebSocket(hooks: {
  url?: (url: string) => string;
  incoming?: (data: unknown, deliver: (data: unknown) => void, socket: WebSocket) => void;
  opened?: (url: string) => void;
}): WebSocketConstructor {
  return class HookedWebSocket implements WebSocketLike {
    readonly #ws: WebSocket;
    constructor(url: string) {
      hooks.opened?.(url);
      this.#ws = new WebSocket(hooks.url ? hooks.url(url) : url);
    }
    get readyState(): number {
      return this.#ws.readyState;
    }
    send(data: string): void {
      this.#ws.send(data);
    }
    close(code?: number, reason?: string): void {
      this.#ws.close(code, reason);
    }
    addEventListener(type: "open" | "message" | "close" | "error", listener: (event: any) => void): void {
      if (type !== "message" || !hooks.incoming) return this.#ws.addEventListener(type, listener);
      this.#ws.addEventListener("message", (event) => hooks.incoming!(event.data, (data) => listener({ data }), this.#ws));
    }
  };
}

/** A WebSocket whose route is refused: it connects to a path the server answers 404. */
export const RefusedWebSocket = hookedWebSocket({ url: (url) => url.replace("/ws?", "/ws-blocked?") });

/** An EventSource whose route is refused the same way. */
export const RefusedEventSource: EventSourceConstructor = class extends EventSource {
  constructor(url: string) {
    super(url.replace("/events?", "/events-blocked?"));
  }
} as unknown as EventSourceConstructor;
