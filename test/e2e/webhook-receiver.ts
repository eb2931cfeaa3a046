/**
 * A local webhook receiver for the tests: an app backend that verifies
 * EVERY call with the official `pusher` SDK's `webhook()` (`isValid()`,
 * then `getEvents()`), as an app moving from Pusher does. A call that does
 * not verify is answered 401 and counted in `invalid`, which the tests
 * assert stays 0.
 *
 * It answers on `/hooks` and every path under it (`/hooks/second`…), so
 * one receiver can stand for several WEBHOOK_URLS; each call records its
 * path. Per channel (and optionally per path), a test can script the
 * answers (`statuses`, used once each, then 200), a delay before
 * answering, or a receiver that is down (`status` for every call). Scripts and what was received are also
 * reachable over HTTP (`POST /script`, `GET /received?channel=`), for the
 * tests that run inside workerd.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import PusherServer from "pusher";

export interface ReceivedEvent {
  id: string;
  name: string;
  channel: string;
  [field: string]: unknown;
}

export interface ReceivedCall {
  /** The URL path called (which of the WEBHOOK_URLS). */
  path: string;
  status: number;
  events: ReceivedEvent[];
  timeMs: number;
  headers: Record<string, string>;
}

export interface ChannelScript {
  /** Only for calls to this path (default: every path). */
  path?: string;
  /** Answers for the next calls, one each (then 200). */
  statuses?: number[];
  /** Every call answered with this (a receiver that is down). */
  status?: number;
  /** Wait this long before answering each call. */
  delayMs?: number;
  /** Hold every call unanswered until `release(channel)` (a receiver slower than anything the test does meanwhile). */
  hold?: boolean;
}

export interface ReceiverCredentials {
  appId: string;
  key: string;
  secret: string;
}

export class WebhookReceiver {
  readonly calls: ReceivedCall[] = [];
  /** Calls that did not verify with the SDK. */
  invalid = 0;
  readonly #scripts = new Map<string, ChannelScript>();
  readonly #waiters = new Set<() => void>();
  /** Calls being held, per channel (see ChannelScript.hold). */
  readonly #held = new Map<string, (() => void)[]>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
    private readonly sdk: PusherServer,
  ) {}

  static async start(credentials: ReceiverCredentials, port = 0): Promise<WebhookReceiver> {
    const sdk = new PusherServer({ appId: credentials.appId, key: credentials.key, secret: credentials.secret, host: "127.0.0.1" });
    let receiver!: WebhookReceiver;
    const server = createServer((request, response) => {
      receiver.handle(request).then(
        ({ status, body }) => response.writeHead(status, { "content-type": "application/json" }).end(body),
        (error) => response.writeHead(500).end(String(error)),
      );
    });
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    const address = server.address();
    const actual = typeof address === "object" && address ? address.port : port;
    receiver = new WebhookReceiver(server, `http://127.0.0.1:${actual}/hooks`, sdk);
    return receiver;
  }

  script(channel: string, script: ChannelScript): void {
    this.#scripts.set(`${channel} ${script.path ?? "*"}`, { ...script, statuses: [...(script.statuses ?? [])] });
  }

  /** How many calls for `channel` are held unanswered right now. */
  heldFor(channel: string): number {
    return this.#held.get(channel)?.length ?? 0;
  }

  /** Answers the held calls for `channel`, and stops holding new ones. */
  release(channel: string): void {
    for (const [key, script] of this.#scripts) if (key.startsWith(`${channel} `)) script.hold = false;
    for (const answer of this.#held.get(channel)?.splice(0) ?? []) answer();
  }

  /** Every event received for `channel` (on `path`, default /hooks), duplicates from retries included, in arrival order. */
  eventsFor(channel: string, path = "/hooks"): ReceivedEvent[] {
    return this.calls.filter((call) => call.status === 200 && call.path === path).flatMap((call) => call.events).filter((event) => event.channel === channel);
  }

  /** Every call that carried an event of `channel`, whatever it was answered. */
  callsFor(channel: string): ReceivedCall[] {
    return this.calls.filter((call) => call.events.some((event) => event.channel === channel));
  }

  /** Resolves once `check` returns a value (re-checked on every call received); rejects after `timeoutMs`. */
  async until<T>(check: () => T | undefined | false, what: string, timeoutMs = 30_000): Promise<T> {
    const first = check();
    if (first) return first;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(look);
        reject(new Error(`webhook receiver: timed out after ${timeoutMs} ms waiting for ${what}; got ${JSON.stringify(this.calls.map((c) => c.events.map((e) => `${e.channel}:${e.name}`)))}`));
      }, timeoutMs);
      const look = () => {
        const value = check();
        if (!value) return;
        clearTimeout(timer);
        this.#waiters.delete(look);
        resolve(value);
      };
      this.#waiters.add(look);
    });
  }

  /** Waits for events of `channel` (answered 200) that `check` accepts. */
  untilEvents(channel: string, check: (events: ReceivedEvent[]) => boolean, what: string, timeoutMs?: number): Promise<ReceivedEvent[]> {
    return this.until(() => {
      const events = this.eventsFor(channel);
      return check(events) && events;
    }, what, timeoutMs);
  }

  stop(): Promise<void> {
    for (const channel of this.#held.keys()) this.release(channel);
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private async handle(request: IncomingMessage): Promise<{ status: number; body: string }> {
    const raw = await readBody(request);
    const url = new URL(request.url ?? "/", "http://receiver");
    if (request.method === "POST" && url.pathname === "/script") {
      const { channel, ...script } = JSON.parse(raw) as ChannelScript & { channel: string };
      this.script(channel, script);
      return { status: 204, body: "" };
    }
    if (request.method === "GET" && url.pathname === "/received") {
      const channel = url.searchParams.get("channel") ?? "";
      return { status: 200, body: JSON.stringify({ invalid: this.invalid, calls: this.callsFor(channel) }) };
    }
    if (request.method !== "POST" || !(url.pathname === "/hooks" || url.pathname.startsWith("/hooks/"))) return { status: 404, body: "" };
    return this.receive(request, url.pathname, raw);
  }

  private async receive(request: IncomingMessage, path: string, rawBody: string): Promise<{ status: number; body: string }> {
    const headers = Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k, String(v)]));
    const webhook = this.sdk.webhook({ headers, rawBody });
    if (!webhook.isValid()) {
      this.invalid++;
      this.#notify();
      return { status: 401, body: '{"error":"invalid webhook"}' };
    }
    const events = webhook.getEvents() as unknown as ReceivedEvent[];
    const channel = events[0]?.channel ?? "";
    const script = this.#scripts.get(`${channel} ${path}`) ?? this.#scripts.get(`${channel} *`);
    if (script?.hold) {
      const waiting = this.#held.get(channel) ?? [];
      this.#held.set(channel, waiting);
      const released = new Promise<void>((resolve) => waiting.push(resolve));
      this.#notify();
      await released;
    }
    if (script?.delayMs) await new Promise((resolve) => setTimeout(resolve, script.delayMs));
    const status = script?.statuses?.shift() ?? script?.status ?? 200;
    this.calls.push({ path, status, events, timeMs: webhook.getTime().getTime(), headers });
    this.#notify();
    return { status, body: status === 200 ? "{}" : '{"error":"scripted"}' };
  }

  #notify(): void {
    for (const look of [...this.#waiters]) look();
  }
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    request.on("error", reject);
  });
}
