/**
 * Baseline: a raw `ws` broadcast server, the practical ceiling for a Node
 * process. One in-memory room map; no authentication, no persistence, no
 * validation beyond what keeps it running. Each event is serialized once
 * and the same Buffer is written to every socket.
 *
 * It speaks our frame shapes so one client serves both:
 *   WebSocket  /ws?room=R      → {"type":"welcome","seq"} then {"type":"message","message":<envelope>}
 *                                client {"type":"send","data","clientId"} → {"type":"ack","clientId","seq","id"}
 *                                to the sender, and the message to everyone in the room, the sender included
 *   SSE        /events?room=R  → `id:` / `event: message` / `data: <envelope>` (the raw node:http equivalent of ours)
 *   long-poll  /messages?room=R&after=N&wait=S → {"messages":[…],"seq"}: held until the next event (up to S s)
 *   POST /notify {"room","event","data"} → 202 {"message":<envelope>}, to every transport
 *   GET /status?room=R → {"seq","sockets","streams","polls","rssMiB"}
 *
 * Run by the bench runner in its own process (bench/lib/baseline.ts):
 * `node bench/baselines/ws-server.ts --port 0`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { WebSocketServer, type WebSocket } from "ws";
import { envelope, readNotify, residentMiB, roomParam, sendJson, SeqCounter, serve, type BaselineEnvelope } from "./common.ts";

/** Recent events kept per room, so a poll that arrives just after an event still gets it. */
const RECENT_EVENTS = 100;
const MAX_WAIT_MS = 25_000;

interface HeldPoll {
  response: ServerResponse;
  timer: ReturnType<typeof setTimeout>;
}

interface Room {
  sockets: Set<WebSocket>;
  streams: Set<ServerResponse>;
  polls: Set<HeldPoll>;
  recent: BaselineEnvelope[];
}

const rooms = new Map<string, Room>();
const seqs = new SeqCounter();

function roomOf(name: string): Room {
  let room = rooms.get(name);
  if (!room) rooms.set(name, (room = { sockets: new Set(), streams: new Set(), polls: new Set(), recent: [] }));
  return room;
}

/** One serialization per event and transport; the same bytes go to every subscriber. */
function publish(name: string, event: BaselineEnvelope): void {
  const room = roomOf(name);
  room.recent.push(event);
  if (room.recent.length > RECENT_EVENTS) room.recent.shift();
  const json = JSON.stringify(event);
  if (room.sockets.size > 0) {
    const frame = Buffer.from(`{"type":"message","message":${json}}`);
    for (const socket of room.sockets) socket.send(frame, { binary: false });
  }
  if (room.streams.size > 0) {
    const chunk = Buffer.from(`id: ${event.seq}\nevent: message\ndata: ${json}\n\n`);
    for (const stream of room.streams) stream.write(chunk);
  }
  if (room.polls.size > 0) {
    const body = `{"messages":[${json}],"seq":${event.seq}}`;
    for (const poll of room.polls) answerPoll(room, poll, body);
  }
}

function answerPoll(room: Room, poll: HeldPoll, body: string): void {
  clearTimeout(poll.timer);
  room.polls.delete(poll);
  poll.response.writeHead(200, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(body) });
  poll.response.end(body);
}

function openStream(name: string, request: IncomingMessage, response: ServerResponse): void {
  const room = roomOf(name);
  response.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" });
  response.write("retry: 2000\n\n");
  room.streams.add(response);
  request.on("close", () => room.streams.delete(response));
}

function readMessages(name: string, url: URL, request: IncomingMessage, response: ServerResponse): void {
  const room = roomOf(name);
  const after = Number(url.searchParams.get("after") ?? 0);
  const waitMs = Math.min(MAX_WAIT_MS, Number(url.searchParams.get("wait") ?? 0) * 1000);
  const newer = room.recent.filter((e) => e.seq > after);
  const seq = seqs.current(name);
  if (newer.length > 0 || !(waitMs > 0)) return sendJson(response, 200, { messages: newer, seq });
  const poll: HeldPoll = { response, timer: setTimeout(() => answerPoll(room, poll, `{"messages":[],"seq":${seqs.current(name)}}`), waitMs) };
  room.polls.add(poll);
  request.on("close", () => {
    if (room.polls.delete(poll)) clearTimeout(poll.timer);
  });
}

const server = createServer((request, response) => {
  const url = new URL(request.url ?? "/", "http://127.0.0.1");
  if (request.method === "POST" && url.pathname === "/notify") {
    readNotify(request).then(
      (body) => {
        const event = envelope(body.room, seqs.next(body.room), body.event, body.data);
        publish(body.room, event);
        sendJson(response, 202, { message: event });
      },
      (error: Error) => sendJson(response, 400, { error: { code: "invalid_body", message: error.message } }),
    );
    return;
  }
  const room = roomParam(url);
  if (request.method !== "GET" || !room) return sendJson(response, 404, { error: { code: "not_found", message: "no such route" } });
  if (url.pathname === "/events") return openStream(room, request, response);
  if (url.pathname === "/messages") return readMessages(room, url, request, response);
  if (url.pathname === "/status") {
    const r = roomOf(room);
    return sendJson(response, 200, { seq: seqs.current(room), sockets: r.sockets.size, streams: r.streams.size, polls: r.polls.size, rssMiB: residentMiB() });
  }
  sendJson(response, 404, { error: { code: "not_found", message: "no such route" } });
});

const wss = new WebSocketServer({ server, path: "/ws", perMessageDeflate: false, maxPayload: 64 * 1024 });
wss.on("connection", (socket, request) => {
  const name = roomParam(new URL(request.url ?? "/", "http://127.0.0.1"));
  if (!name) return socket.close(1008, "room required");
  const room = roomOf(name);
  room.sockets.add(socket);
  socket.send(JSON.stringify({ type: "welcome", room: name, seq: seqs.current(name) }));
  socket.on("close", () => room.sockets.delete(socket));
  socket.on("error", () => room.sockets.delete(socket));
  socket.on("message", (raw, isBinary) => {
    if (isBinary) return;
    let frame: { type?: unknown; data?: unknown; clientId?: unknown };
    try {
      frame = JSON.parse(String(raw));
    } catch {
      return void socket.send('{"type":"error","code":"invalid_body","message":"frame is not valid JSON"}');
    }
    if (frame.type !== "send") return;
    const clientId = typeof frame.clientId === "string" ? frame.clientId : undefined;
    const event = envelope(name, seqs.next(name), "message", frame.data ?? {}, { id: "bench-publisher", name: "bench-publisher" }, clientId);
    socket.send(JSON.stringify({ type: "ack", ...(clientId ? { clientId } : {}), seq: event.seq, id: event.id }));
    publish(name, event);
  });
});

serve(server, "ws");
