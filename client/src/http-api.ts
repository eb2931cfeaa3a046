/**
 * The room's HTTP routes (SPEC §4): history and polling, sending, typing,
 * read receipts and presence. Every call carries the token as
 * `Authorization: Bearer`, and retries once with a refreshed token when the
 * server answers `invalid_token`.
 */
import type { Envelope, EventData } from "../../protocol/envelope.js";
import type { PresenceMember } from "../../protocol/frames.js";
import { errorFromResponse, RoomError, toRoomError } from "./errors.js";
import type { TokenKeeper } from "./token.js";

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

/** `GET /rooms/:room/messages`: envelopes oldest first, and the room's last seq. */
export interface MessagesPage {
  messages: Envelope[];
  seq: number;
}

export class HttpApi {
  readonly #roomPath: string;

  constructor(
    baseUrl: string,
    room: string,
    private readonly tokens: TokenKeeper,
    private readonly fetchImpl: FetchLike,
  ) {
    this.#roomPath = `${baseUrl}/rooms/${encodeURIComponent(room)}`;
  }

  /** The room's last seq (a page of one message, read for its `seq`). Also a cheap auth and reachability check. */
  async lastSeq(signal?: AbortSignal): Promise<number> {
    return (await this.messages({ limit: 1 }, signal)).seq;
  }

  /** Messages after a seq (optionally held up to `wait` seconds), or a history page before one. */
  async messages(query: { after?: number; before?: number; wait?: number; limit?: number }, signal?: AbortSignal): Promise<MessagesPage> {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value));
    const qs = params.toString();
    const page = await this.#json<MessagesPage>("GET", `/messages${qs ? `?${qs}` : ""}`, undefined, signal);
    if (!Array.isArray(page?.messages) || typeof page.seq !== "number") throw new RoomError("bad_response", "GET messages answered without messages and seq");
    return page;
  }

  /** Sends a chat message; the same clientId again returns the original envelope. */
  async send(data: EventData, clientId: string): Promise<Envelope> {
    const body = await this.#json<{ message: Envelope }>("POST", "/messages", { data, clientId });
    if (!body?.message || typeof body.message.seq !== "number") throw new RoomError("bad_response", "POST messages answered without a message");
    return body.message;
  }

  async typing(): Promise<void> {
    await this.#request("POST", "/typing");
  }

  async read(seq: number): Promise<void> {
    await this.#request("POST", "/read", { seq });
  }

  async presence(): Promise<PresenceMember[]> {
    const body = await this.#json<{ members: PresenceMember[] }>("GET", "/presence");
    return Array.isArray(body?.members) ? body.members : [];
  }

  async #json<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const response = await this.#request(method, path, body, signal);
    try {
      return (await response.json()) as T;
    } catch (error) {
      if (signal?.aborted) throw toRoomError(error);
      throw new RoomError("bad_response", `${method} ${path} did not answer JSON`, response.status);
    }
  }

  /** One request, retried once with a refreshed token after `invalid_token`. */
  async #request(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<Response> {
    for (let refreshed = false; ; refreshed = true) {
      const headers: Record<string, string> = { authorization: `Bearer ${this.tokens.current}` };
      if (body !== undefined) headers["content-type"] = "application/json";
      let response: Response;
      try {
        response = await this.fetchImpl(`${this.#roomPath}${path}`, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          signal,
        });
      } catch (error) {
        throw toRoomError(error);
      }
      if (response.ok) {
        this.tokens.accepted();
        return response;
      }
      const error = await errorFromResponse(response);
      if (error.code === "invalid_token" && !refreshed && (await this.tokens.refresh(error))) continue;
      throw error;
    }
  }

  /** The WebSocket / EventSource URL of a room route, with the token in the query (they cannot set headers). */
  streamUrl(route: "/ws" | "/events", after: number | undefined): string {
    const base = route === "/ws" ? this.#roomPath.replace(/^http/, "ws") : this.#roomPath;
    const params = new URLSearchParams({ token: this.tokens.current });
    if (after !== undefined) params.set("after", String(after));
    // The WebSocket transport reads coalesced `messages` and `acks` frames (SPEC §4).
    if (route === "/ws") params.set("batch", "1");
    return `${base}${route}?${params}`;
  }
}
