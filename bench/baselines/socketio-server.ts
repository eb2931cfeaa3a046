/**
 * Baseline: a plain Socket.io 4 room broadcast server, what many teams would
 * write instead of the service. In-memory, no authentication, no
 * persistence; the unmodified `socket.io` package with its defaults
 * (WebSocket and HTTP long-polling transports, no compression).
 *
 *   connect with ?room=R           → joins R, then the event "welcome" {seq}
 *   event "send" (data, clientId, ack) → "message" <envelope> to the whole room, the sender
 *                                        included, and ack({seq, id, clientId})
 *   POST /notify {"room","event","data"} → "message" <envelope> to the room; 202 {"message":<envelope>}
 *   GET /status?room=R             → {"seq","sockets","rssMiB"}
 *
 * Run by the bench runner in its own process (bench/lib/baseline.ts):
 * `node bench/baselines/socketio-server.ts --port 0`.
 */
import { createServer } from "node:http";
import { Server } from "socket.io";
import { envelope, readNotify, residentMiB, roomParam, sendJson, SeqCounter, serve } from "./common.ts";

const seqs = new SeqCounter();

const server = createServer((request, response) => {
  const url = new URL(request.url ?? "/", "http://127.0.0.1");
  if (request.method === "POST" && url.pathname === "/notify") {
    readNotify(request).then(
      (body) => {
        const event = envelope(body.room, seqs.next(body.room), body.event, body.data);
        io.to(body.room).emit("message", event);
        sendJson(response, 202, { message: event });
      },
      (error: Error) => sendJson(response, 400, { error: { code: "invalid_body", message: error.message } }),
    );
    return;
  }
  const room = roomParam(url);
  if (request.method === "GET" && url.pathname === "/status" && room) {
    return sendJson(response, 200, { seq: seqs.current(room), sockets: io.sockets.adapter.rooms.get(room)?.size ?? 0, rssMiB: residentMiB() });
  }
  // Socket.io answers its own path (/socket.io/) before this handler runs.
  sendJson(response, 404, { error: { code: "not_found", message: "no such route" } });
});

const io = new Server(server, { serveClient: false, perMessageDeflate: false, maxHttpBufferSize: 64 * 1024 });

io.on("connection", (socket) => {
  const name = typeof socket.handshake.query.room === "string" ? socket.handshake.query.room.slice(0, 164) : "";
  if (!name) return void socket.disconnect(true);
  void socket.join(name);
  socket.emit("welcome", { room: name, seq: seqs.current(name) });
  socket.on("send", (data: unknown, clientId: unknown, ack: unknown) => {
    const id = typeof clientId === "string" ? clientId : undefined;
    const event = envelope(name, seqs.next(name), "message", data ?? {}, { id: "bench-publisher", name: "bench-publisher" }, id);
    if (typeof ack === "function") ack({ ...(id ? { clientId: id } : {}), seq: event.seq, id: event.id });
    io.to(name).emit("message", event);
  });
});

serve(server, "socketio");
