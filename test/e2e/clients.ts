/** Real clients for end-to-end tests: tokens, HTTP calls, a WebSocket with awaitable frames. */
import { SignJWT } from "jose";
import { DEFAULT_SECRETS } from "./server";

export async function tokenFor(sub: string, claims: Record<string, unknown> = { rooms: ["*"] }, secret = DEFAULT_SECRETS.JWT_SECRET): Promise<string> {
  return new SignJWT({ name: sub, ...claims })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime("1h")
    .sign(new TextEncoder().encode(secret));
}

export function postJson(url: string, body: unknown, bearer?: string): Promise<Response> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  return fetch(url, { method: "POST", headers, body: JSON.stringify(body) });
}

/** A Node 22 WebSocket whose frames can be awaited (no sleeps). */
export class WsClient {
  readonly frames: any[] = [];
  #listeners: (() => void)[] = [];
  readonly closed: Promise<CloseEvent>;

  private constructor(readonly ws: WebSocket) {
    ws.addEventListener("message", (event) => {
      const data = String(event.data);
      this.frames.push(data.startsWith("{") ? JSON.parse(data) : data);
      for (const listener of this.#listeners.splice(0)) listener();
    });
    this.closed = new Promise((r) => ws.addEventListener("close", (e) => { r(e); for (const l of this.#listeners.splice(0)) l(); }));
  }

  static open(url: string): Promise<WsClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      const client = new WsClient(ws);
      ws.addEventListener("open", () => resolve(client), { once: true });
      ws.addEventListener("error", () => reject(new Error(`WebSocket ${url} failed`)), { once: true });
    });
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  /** Waits until `predicate(frames)` holds, re-checking on every new frame. */
  async until<T>(predicate: (frames: any[]) => T | undefined | false, what = "condition"): Promise<T> {
    for (;;) {
      const result = predicate(this.frames);
      if (result) return result;
      if (this.ws.readyState >= WebSocket.CLOSING) throw new Error(`socket closed while waiting for ${what}`);
      await new Promise<void>((r) => this.#listeners.push(r));
    }
  }

  /** Every envelope received, from `message` frames and coalesced `messages` frames (batch=1). */
  messages(): any[] {
    return this.frames.flatMap((f) => (f?.type === "message" ? [f.message] : f?.type === "messages" ? f.messages : []));
  }

  untilMessages(n: number): Promise<any[]> {
    return this.until(() => (this.messages().length >= n ? this.messages() : undefined), `${n} messages`);
  }

  close(): void {
    this.ws.close();
  }
}
