/** Shared helpers for tests that run inside workerd. */
import { exports } from "cloudflare:workers";
import { env } from "cloudflare:workers";
import { SignJWT } from "jose";
import { expect } from "vitest";

export const BASE = "https://rooms.test";

export async function tokenFor(sub: string, claims: Record<string, unknown> = { rooms: ["*"] }, secret = env.JWT_SECRET!): Promise<string> {
  return new SignJWT({ name: sub[0]!.toUpperCase() + sub.slice(1), ...claims })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime("1h")
    .sign(new TextEncoder().encode(secret));
}

export function call(path: string, init: RequestInit = {}): Promise<Response> {
  return exports.default.fetch(new Request(`${BASE}${path}`, init));
}

export function postJson(path: string, body: unknown, token?: string): Promise<Response> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  return call(path, { method: "POST", headers, body: JSON.stringify(body) });
}

export function notify(room: string, body: unknown): Promise<Response> {
  return postJson(`/rooms/${encodeURIComponent(room)}/notify`, body, env.NOTIFY_SECRET);
}

/** A WebSocket opened through the Worker, with its frames queued for awaiting. */
export class TestSocket {
  readonly frames: any[] = [];
  #waiters: { match: (f: any) => boolean; resolve: (f: any) => void }[] = [];
  closed = false;

  constructor(readonly ws: WebSocket) {
    ws.accept();
    ws.addEventListener("message", (event) => {
      const frame = typeof event.data === "string" && event.data.startsWith("{") ? JSON.parse(event.data) : event.data;
      this.frames.push(frame);
      this.#waiters = this.#waiters.filter((w) => (w.match(frame) ? (w.resolve(frame), false) : true));
    });
    ws.addEventListener("close", () => (this.closed = true));
  }

  static async open(room: string, token: string, query = ""): Promise<TestSocket> {
    const response = await call(`/rooms/${encodeURIComponent(room)}/ws?token=${token}${query}`, { headers: { Upgrade: "websocket" } });
    if (response.status !== 101 || !response.webSocket) throw new Error(`upgrade failed: ${response.status} ${await response.text()}`);
    return new TestSocket(response.webSocket);
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  /** Resolves with the first frame (already received or future) that matches. */
  next(match: (frame: any) => boolean = () => true): Promise<any> {
    const seen = this.frames.find(match);
    if (seen) {
      this.frames.splice(this.frames.indexOf(seen), 1);
      return Promise.resolve(seen);
    }
    return new Promise((resolve) => this.#waiters.push({ match: (f) => (match(f) ? (this.frames.splice(this.frames.indexOf(f), 1), true) : false), resolve }));
  }

  /** Every envelope received so far, from `message` frames and coalesced `messages` frames (batch=1). */
  messages(): any[] {
    return this.frames.flatMap((f) => (f?.type === "message" ? [f.message] : f?.type === "messages" ? f.messages : []));
  }

  /** Waits until `n` message frames have arrived in total. */
  async untilMessages(n: number): Promise<any[]> {
    while (this.messages().length < n) await new Promise<void>((resolve) => this.#waiters.push({ match: () => true, resolve: () => resolve() }));
    return this.messages();
  }

  close(): void {
    this.ws.close(1000, "done");
  }
}

/** Opens an SSE stream through the Worker and returns a reader of its text. */
export async function openSse(room: string, token: string) {
  const response = await call(`/rooms/${room}/events?token=${token}`);
  expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/);
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  return {
    /** Reads until the buffer contains `text`. */
    async until(text: string): Promise<string> {
      while (!buffer.includes(text)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before ${text}`);
        buffer += decoder.decode(value);
      }
      return buffer;
    },
    close: () => reader.cancel(),
  };
}
