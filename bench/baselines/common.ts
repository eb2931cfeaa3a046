/**
 * What the two baseline servers (socketio-server.ts, ws-server.ts) share:
 * an envelope of the same shape and size as ours (so every system sends
 * comparable bytes), a capped JSON body reader, and the process plumbing the
 * runner relies on (listen on 127.0.0.1, announce the port, exit with the
 * runner, never outlive a time limit).
 *
 * The baselines are what a user would build instead of the service: an
 * in-memory room broadcast in one Node process, with no authentication, no
 * persistence and no history beyond the last few events.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, Server, ServerResponse } from "node:http";

/** Request bodies above this are refused (the bench sends a few hundred bytes). */
const MAX_BODY_BYTES = 64 * 1024;
/** Room names are the bench's own; anything longer is a mistake. */
const MAX_ROOM_LENGTH = 164;
/** A baseline never outlives this, whatever happens to the runner. */
const MAX_LIFETIME_MS = 60 * 60_000;

export interface BaselineEnvelope {
  room: string;
  seq: number;
  id: string;
  event: string;
  from?: { id: string; name: string };
  data: unknown;
  ts: string;
  clientId?: string;
}

/** A room's sequence counter: the baselines number events too, so order can be checked the same way. */
export class SeqCounter {
  readonly #seqs = new Map<string, number>();

  next(room: string): number {
    const seq = (this.#seqs.get(room) ?? 0) + 1;
    this.#seqs.set(room, seq);
    return seq;
  }

  current(room: string): number {
    return this.#seqs.get(room) ?? 0;
  }
}

export function envelope(room: string, seq: number, event: string, data: unknown, from?: BaselineEnvelope["from"], clientId?: string): BaselineEnvelope {
  return { room, seq, id: randomUUID(), event, ...(from ? { from } : {}), data, ts: new Date().toISOString(), ...(clientId ? { clientId } : {}) };
}

/** The room named in a query string, or undefined when missing or implausible. */
export function roomParam(url: URL): string | undefined {
  const room = url.searchParams.get("room");
  return room && room.length <= MAX_ROOM_LENGTH ? room : undefined;
}

export interface NotifyBody {
  room: string;
  event: string;
  data: unknown;
}

/** Reads a small JSON body; rejects on size, bad JSON or a missing room/event. */
export function readNotify(request: IncomingMessage): Promise<NotifyBody> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error("body too large"));
        request.destroy();
      } else {
        chunks.push(chunk);
      }
    });
    request.on("error", reject);
    request.on("end", () => {
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Partial<NotifyBody>;
        if (typeof body.room !== "string" || body.room.length === 0 || body.room.length > MAX_ROOM_LENGTH || typeof body.event !== "string") {
          throw new Error("expected {room, event, data}");
        }
        resolve({ room: body.room, event: body.event, data: body.data ?? {} });
      } catch (error) {
        reject(error);
      }
    });
  });
}

export function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text) });
  response.end(text);
}

export function residentMiB(): number {
  return Math.round((process.memoryUsage.rss() / 2 ** 20) * 10) / 10;
}

/**
 * Listens on 127.0.0.1 (port from `--port`, default any), then tells the
 * runner which port with one JSON line on stdout. Exits when the runner's IPC
 * channel closes (the runner ended, however it ended) and after an hour in any case.
 */
export function serve(server: Server, name: string): void {
  // The bench reuses kept-alive connections for its notifies: never close one under it between two of them.
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 121_000;
  const flag = process.argv.indexOf("--port");
  const port = flag >= 0 ? Number(process.argv[flag + 1]) : 0;
  server.listen(port, "127.0.0.1", () => {
    const address = server.address();
    const actual = typeof address === "object" && address ? address.port : 0;
    process.stdout.write(`${JSON.stringify({ listening: actual, name, pid: process.pid })}\n`);
  });
  process.on("disconnect", () => process.exit(0));
  setTimeout(() => process.exit(0), MAX_LIFETIME_MS).unref();
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => process.exit(0));
}
