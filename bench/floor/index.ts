/**
 * The floor: the least a Worker + SQLite Durable Object can do for each
 * benchmark scenario, on the same runtime as the service, so the bench can
 * say how much of the service's cost is its own (ours / floor) and how much
 * is the runtime's. It speaks just enough of the service's wire shapes for
 * the bench's clients:
 *
 *   GET  /rooms/:room/ws        hibernatable WebSocket; a welcome frame with the room's seq
 *   POST /rooms/:room/notify    {event, data}: one SQLite insert, then one send per socket,
 *                               one write per SSE stream, one answer per held poll; 202
 *   GET  /rooms/:room/messages?after=N   the events after N, or held until the next one
 *   GET  /rooms/:room/events    an SSE stream of the events from now on
 *   GET  /rooms/:room/status    {seq, subscribers}
 *
 * No authentication, validation, rate limit, D1 copy or presence: each is
 * work the service chooses to do, and the ratio shows its price. Never
 * imported by the product; served only by the bench.
 */
import { DurableObject } from "cloudflare:workers";

interface Env {
  ROOMS: DurableObjectNamespace<FloorRoom>;
}

type NotifyItem = { event: string; data: unknown };
type NotifyBody = NotifyItem | { events: NotifyItem[] };

const ROUTE = /^\/rooms\/([^/]+)\/(ws|notify|messages|events|status)$/;

export default {
  fetch(request: Request, env: Env): Promise<Response> | Response {
    const match = ROUTE.exec(new URL(request.url).pathname);
    if (!match) return new Response("not found", { status: 404 });
    return env.ROOMS.getByName(match[1]!).fetch(request);
  },
} satisfies ExportedHandler<Env>;

const encoder = new TextEncoder();

export class FloorRoom extends DurableObject<Env> {
  #seq: number;
  readonly #polls = new Set<(body: string) => void>();
  readonly #streams = new Set<WritableStreamDefaultWriter<Uint8Array>>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, envelope TEXT NOT NULL)");
    this.#seq = ctx.storage.sql.exec<{ seq: number }>("SELECT coalesce(max(seq), 0) AS seq FROM events").one().seq;
  }

  override async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    switch (url.pathname.slice(url.pathname.lastIndexOf("/") + 1)) {
      case "ws":
        return this.#socket();
      case "notify":
        return this.#notifyRequest((await request.json()) as NotifyBody);
      case "messages":
        return this.#messages(Number(url.searchParams.get("after") ?? 0), request.signal);
      case "events":
        return this.#events(request.signal);
      default:
        return Response.json({ seq: this.#seq, subscribers: this.ctx.getWebSockets().length + this.#polls.size + this.#streams.size });
    }
  }

  #socket(): Response {
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.ctx.acceptWebSocket(server);
    server.send(`{"type":"welcome","seq":${this.#seq}}`);
    return new Response(null, { status: 101, webSocket: client });
  }

  /** `{event, data}`, or `{events: [{event, data}…]}` (batch publish: the inserts of one turn share one commit). */
  #notifyRequest(body: NotifyBody): Response {
    if (!("events" in body)) return Response.json({ message: this.#notify(body) }, { status: 202 });
    return Response.json({ messages: body.events.map((item) => this.#notify(item)) }, { status: 202 });
  }

  #notify({ event, data }: NotifyItem): { seq: number } {
    const seq = ++this.#seq;
    const envelope = JSON.stringify({ seq, event, data });
    this.ctx.storage.sql.exec("INSERT INTO events (seq, envelope) VALUES (?, ?)", seq, envelope);
    const frame = `{"type":"message","message":${envelope}}`;
    for (const socket of this.ctx.getWebSockets()) socket.send(frame);
    if (this.#streams.size) {
      const chunk = encoder.encode(`data: ${envelope}\n\n`);
      for (const writer of this.#streams) void writer.write(chunk).catch(() => this.#streams.delete(writer));
    }
    if (this.#polls.size) {
      const body = `{"messages":[${envelope}],"seq":${seq}}`;
      for (const answer of this.#polls) answer(body);
      this.#polls.clear();
    }
    return { seq };
  }

  #messages(after: number, signal: AbortSignal): Response | Promise<Response> {
    const json = (body: string) => new Response(body, { headers: { "content-type": "application/json" } });
    if (after < this.#seq) {
      const rows = this.ctx.storage.sql.exec<{ envelope: string }>("SELECT envelope FROM events WHERE seq > ? ORDER BY seq LIMIT 100", after).toArray();
      return json(`{"messages":[${rows.map((r) => r.envelope).join(",")}],"seq":${this.#seq}}`);
    }
    return new Promise((resolve) => {
      const answer = (body: string) => resolve(json(body));
      this.#polls.add(answer);
      signal.addEventListener("abort", () => this.#polls.delete(answer));
    });
  }

  #events(signal: AbortSignal): Response {
    const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
    const writer = writable.getWriter();
    this.#streams.add(writer);
    signal.addEventListener("abort", () => {
      this.#streams.delete(writer);
      void writer.close().catch(() => {});
    });
    void writer.write(encoder.encode(": open\n\n"));
    return new Response(readable, { headers: { "content-type": "text/event-stream", "cache-control": "no-store" } });
  }
}
