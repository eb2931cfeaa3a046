/**
 * Clients for the fallback-transport end-to-end tests: the HTTP routes as
 * small typed calls, an EventSource (the `eventsource` package) whose
 * connections are recorded byte for byte and can be dropped or held back
 * like a flaky network, and a raw `text/event-stream` reader.
 *
 * Every wait here is awaited on an event (a chunk, a frame, a response) and
 * bounded by a timeout that fails with a message naming what was awaited.
 * The one exception is `eventually`, for conditions that have no event to
 * await (a room's subscriber count), which re-checks on a short interval.
 */
import { EventSource, type FetchLike, type FetchLikeResponse } from "eventsource";
import { DEFAULT_SECRETS } from "./server";

export const NOTIFY_SECRET = DEFAULT_SECRETS.NOTIFY_SECRET;

/** The envelope as every transport carries it (SPEC §1). */
export interface Envelope {
  room: string;
  seq: number;
  id: string;
  event: string;
  from?: { id: string; name: string };
  data: Record<string, unknown>;
  ts: string;
  clientId?: string;
}

export interface Page {
  messages: Envelope[];
  seq: number;
}

export interface RoomStatus {
  seq: number;
  trimmedSeq: number;
  subscribers: number;
  outbox: { pending: number; flushedSeq: number; consecutiveFailures: number; lastError?: string };
}

export interface Answer<T = any> {
  status: number;
  body: T;
  headers: Headers;
  /** Milliseconds from sending the request to having the whole body. */
  ms: number;
  /** `performance.now()` when the body was complete. */
  at: number;
}

let roomCounter = 0;
/** A room id no other test (or earlier run over the same state) uses. */
export function uniqueRoom(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${process.pid}-${++roomCounter}`;
}

/** Rejects with a clear message if `promise` has not settled within `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Re-checks `check` every `intervalMs` until it returns something truthy,
 * for at most `timeoutMs`. Only for state that has no event to await.
 */
export async function eventually<T>(check: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs = 15_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`gave up after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ""}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export const range = (from: number, to: number): number[] => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

/** The routes of one running server, as typed calls. */
export class Api {
  constructor(readonly base: string) {}

  get wsBase(): string {
    return this.base.replace(/^http/, "ws");
  }

  async request<T = any>(path: string, init: RequestInit = {}): Promise<Answer<T>> {
    const start = performance.now();
    const response = await fetch(`${this.base}${path}`, init);
    const text = await response.text();
    const at = performance.now();
    let body: any = text;
    if ((response.headers.get("content-type") ?? "").includes("json") && text) body = JSON.parse(text);
    return { status: response.status, body, headers: response.headers, ms: at - start, at };
  }

  get<T = any>(path: string, token?: string, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Answer<T>> {
    return this.request<T>(path, { headers: { ...headers, ...(token ? { authorization: `Bearer ${token}` } : {}) }, signal });
  }

  post<T = any>(path: string, body: unknown, token?: string): Promise<Answer<T>> {
    return this.request<T>(path, {
      method: "POST",
      headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
  }

  /** GET /rooms/:room/messages with the given query. */
  messages(room: string, token: string, query: Record<string, string | number> = {}, signal?: AbortSignal): Promise<Answer<Page>> {
    return this.get<Page>(`/rooms/${encodeURIComponent(room)}/messages${queryString(query)}`, token, {}, signal);
  }

  /** POST /rooms/:room/notify; expects a new event (202) and returns its envelope. */
  async notify(room: string, event = "tick", data: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Promise<Envelope> {
    const answer = await this.post<{ message: Envelope }>(`/rooms/${encodeURIComponent(room)}/notify`, { event, data, ...extra }, NOTIFY_SECRET);
    if (answer.status !== 202) throw new Error(`notify ${room}: ${answer.status} ${JSON.stringify(answer.body)}`);
    return answer.body.message;
  }

  /** POST /rooms/:room/messages. */
  send(room: string, token: string, text: string, clientId?: string): Promise<Answer<{ message: Envelope }>> {
    return this.post(`/rooms/${encodeURIComponent(room)}/messages`, { data: { text }, ...(clientId ? { clientId } : {}) }, token);
  }

  async status(room: string): Promise<RoomStatus> {
    const answer = await this.get<RoomStatus>(`/rooms/${encodeURIComponent(room)}/status`, NOTIFY_SECRET);
    if (answer.status !== 200) throw new Error(`status ${room}: ${answer.status} ${JSON.stringify(answer.body)}`);
    return answer.body;
  }

  /** Waits (bounded) until the room's status satisfies `predicate`; returns that status. */
  async untilStatus(room: string, predicate: (status: RoomStatus) => boolean, what: string, timeoutMs = 15_000): Promise<RoomStatus> {
    let last: RoomStatus | undefined;
    try {
      return await eventually(async () => {
        last = await this.status(room);
        return predicate(last) ? last : undefined;
      }, `${room}: ${what}`, timeoutMs);
    } catch (error) {
      throw new Error(`${(error as Error).message}; last status: ${JSON.stringify(last)}`);
    }
  }

  /** Every event of a room, oldest first, read forward in pages of `limit`. */
  async history(room: string, token: string, limit = 1000): Promise<Envelope[]> {
    const all: Envelope[] = [];
    for (let guard = 0; guard < 10_000; guard++) {
      const page = await this.messages(room, token, { after: all.at(-1)?.seq ?? 0, limit });
      if (page.status !== 200) throw new Error(`history ${room}: ${page.status} ${JSON.stringify(page.body)}`);
      all.push(...page.body.messages);
      if (page.body.messages.length < limit) return all;
    }
    throw new Error("history: too many pages");
  }
}

export function queryString(query: Record<string, string | number | undefined>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value));
  const text = params.toString();
  return text ? `?${text}` : "";
}

/** Something whose state changes on events and can be awaited. */
class Awaitable {
  #listeners: (() => void)[] = [];

  protected changed(): void {
    for (const listener of this.#listeners.splice(0)) listener();
  }

  /** Resolves with `predicate()` once it is truthy, re-checking on every change. */
  async until<T>(predicate: () => T | undefined | null | false, what: string, timeoutMs = 20_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = predicate();
      if (value) return value;
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#listeners.push(resolve);
        timer = setTimeout(resolve, remaining);
      });
      clearTimeout(timer);
    }
  }
}

/** One HTTP connection an SseClient made, as the network saw it. */
export interface SseConnection {
  /** The request headers the client sent (`Last-Event-ID` on reconnects). */
  readonly requestHeaders: Headers;
  status: number;
  responseHeaders?: Headers;
  /** Every byte received on this connection, decoded. */
  raw: string;
  /** Simulates a network failure: the client sees a read error, the server sees its socket close. */
  drop(): void;
}

export interface SseEvent {
  type: string;
  data: string;
  lastEventId: string;
  /** Index in `connections` of the connection that carried it. */
  connection: number;
}

const SSE_EVENT_TYPES = ["message", "presence", "typing", "read"] as const;

/**
 * An `EventSource` (the `eventsource` package, spec-compliant: it reconnects
 * by itself and sends `Last-Event-ID`) behind a fetch that records each
 * connection and can drop it, or hold reconnects back while "offline".
 */
export class SseClient extends Awaitable {
  readonly es: EventSource;
  readonly events: SseEvent[] = [];
  readonly connections: SseConnection[] = [];
  readonly errors: { message?: string; code?: number }[] = [];
  opens = 0;
  #offline?: Promise<void>;

  constructor(readonly url: string, extraHeaders: Record<string, string> = {}) {
    super();
    const recordingFetch: FetchLike = async (input, init) => {
      if (this.#offline) await this.#offline;
      const network = new AbortController();
      const signal = init.signal as AbortSignal | undefined;
      signal?.addEventListener("abort", () => network.abort(signal.reason), { once: true });
      const requestHeaders = new Headers({ ...init.headers, ...extraHeaders });
      let bodyController!: ReadableStreamDefaultController<Uint8Array>;
      let dropped = false;
      const connection: SseConnection = {
        requestHeaders,
        status: 0,
        raw: "",
        drop: () => {
          if (dropped) return;
          dropped = true;
          try {
            bodyController.error(new TypeError("network connection lost"));
          } catch {
            // the body already ended
          }
          network.abort(new Error("dropped"));
        },
      };
      this.connections.push(connection);
      this.changed();
      const response = await fetch(input, { ...init, headers: requestHeaders, signal: network.signal });
      connection.status = response.status;
      connection.responseHeaders = response.headers;
      const reader = response.body?.getReader();
      const decoder = new TextDecoder();
      const body = new ReadableStream<Uint8Array>({
        start: (controller) => {
          bodyController = controller;
        },
        pull: async (controller) => {
          if (dropped || !reader) return;
          try {
            const { done, value } = await reader.read();
            if (dropped) return;
            if (done) {
              controller.close();
              return;
            }
            connection.raw += decoder.decode(value, { stream: true });
            controller.enqueue(value);
            this.changed();
          } catch (error) {
            if (!dropped) controller.error(error);
          }
        },
        cancel: (reason) => reader?.cancel(reason),
      });
      const wrapped: FetchLikeResponse = { body, url: response.url, status: response.status, redirected: response.redirected, headers: response.headers };
      return wrapped;
    };
    this.es = new EventSource(url, { fetch: recordingFetch });
    for (const type of SSE_EVENT_TYPES) {
      this.es.addEventListener(type, (event) => {
        const message = event as MessageEvent;
        this.events.push({ type, data: String(message.data), lastEventId: message.lastEventId, connection: this.connections.length - 1 });
        this.changed();
      });
    }
    this.es.addEventListener("open", () => {
      this.opens++;
      this.changed();
    });
    this.es.addEventListener("error", (event) => {
      const error = event as unknown as { message?: string; code?: number };
      this.errors.push({ message: error.message, code: error.code });
      this.changed();
    });
  }

  /** Envelopes of the `message` events, in arrival order. */
  messages(): Envelope[] {
    return this.events.filter((e) => e.type === "message").map((e) => JSON.parse(e.data) as Envelope);
  }

  seqs(): number[] {
    return this.messages().map((m) => m.seq);
  }

  untilOpen(n = 1, timeoutMs?: number): Promise<true> {
    return this.until(() => this.opens >= n || undefined, `${n} open connection(s)`, timeoutMs);
  }

  /** Waits until a message with seq >= `seq` has arrived. */
  untilSeq(seq: number, timeoutMs?: number): Promise<Envelope[]> {
    return this.until(() => (this.messages().some((m) => m.seq >= seq) ? this.messages() : undefined), `seq ${seq} over SSE`, timeoutMs);
  }

  untilEvent(type: string, timeoutMs?: number): Promise<SseEvent> {
    return this.until(() => this.events.find((e) => e.type === type), `an SSE "${type}" event`, timeoutMs);
  }

  /** Network down: new connections wait until the returned function is called. */
  goOffline(): () => void {
    let release!: () => void;
    this.#offline = new Promise((r) => (release = r));
    return () => {
      this.#offline = undefined;
      release();
    };
  }

  /** The connection in use now. */
  get current(): SseConnection {
    const connection = this.connections.at(-1);
    if (!connection) throw new Error("no connection yet");
    return connection;
  }

  close(): void {
    this.es.close();
  }
}

/** A `text/event-stream` read with plain fetch: the bytes exactly as sent. */
export class RawStream extends Awaitable {
  text = "";
  ended = false;
  readonly #abort = new AbortController();

  private constructor(readonly response: Response) {
    super();
  }

  static async open(url: string, headers: Record<string, string> = {}): Promise<RawStream> {
    const abort = new AbortController();
    const response = await fetch(url, { headers: { accept: "text/event-stream", ...headers }, signal: abort.signal });
    const stream = new RawStream(response);
    stream.#abort.signal.addEventListener("abort", () => abort.abort());
    void stream.#read();
    return stream;
  }

  async #read(): Promise<void> {
    const reader = this.response.body!.getReader();
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        this.text += decoder.decode(value, { stream: true });
        this.changed();
      }
    } catch {
      // aborted
    }
    this.ended = true;
    this.changed();
  }

  untilText(pattern: RegExp, what = String(pattern), timeoutMs?: number): Promise<RegExpMatchArray> {
    return this.until(() => this.text.match(pattern) ?? undefined, what, timeoutMs);
  }

  /** The client goes away: closes the connection. */
  abort(): void {
    this.#abort.abort();
  }
}

/** Parses the complete blocks of SSE text into fields (comments kept as `comment`). */
export function sseBlocks(text: string): Record<string, string>[] {
  const end = text.lastIndexOf("\n\n");
  return (end === -1 ? "" : text.slice(0, end))
    .split("\n\n")
    .filter((block) => block.length > 0)
    .map((block) => {
      const fields: Record<string, string> = {};
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) fields.comment = line.slice(1).trim();
        else {
          const colon = line.indexOf(":");
          const name = colon === -1 ? line : line.slice(0, colon);
          const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
          fields[name] = fields[name] === undefined ? value : `${fields[name]}\n${value}`;
        }
      }
      return fields;
    });
}

/** Seqs that occur more than once. */
export function duplicates(seqs: number[]): number[] {
  const seen = new Set<number>();
  const twice = new Set<number>();
  for (const seq of seqs) (seen.has(seq) ? twice : seen).add(seq);
  return [...twice];
}

/**
 * For a test's own server: on failure, print what wrangler logged that could
 * explain it (a reload of the Worker resets every room; errors; crashes).
 */
export function serverLogOnFailure(output: () => string[] | undefined): (context: { onTestFailed(fn: () => void): void }) => void {
  return ({ onTestFailed }) =>
    onTestFailed(() => {
      const lines = (output() ?? []).join("").split("\n").filter((line) => /reload|error|exception|uncaught|✘/i.test(line) && !/Request\.cf|workers\.cloudflare\.com/.test(line));
      if (lines.length) console.error(`wrangler dev logged:\n${lines.slice(-30).join("\n")}`);
    });
}
