/**
 * SPEC §3: every route's error codes, each in the exact shape
 * {"error":{"code","message"}}: routing (404/405/426), bodies (415, 400
 * invalid_body, 413), room ids (400 invalid_room) and queries (400 invalid_query).
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { call, postJson, tokenFor, TestSocket } from "./helpers";
import { expectError, get, uniqueRoom } from "./support";

let token: string;
beforeAll(async () => {
  token = await tokenFor("erin");
});

function post(path: string, body: BodyInit | null, headers: Record<string, string>, bearer: string | undefined = token): Promise<Response> {
  return call(path, { method: "POST", body, headers: bearer ? { authorization: `Bearer ${bearer}`, ...headers } : headers });
}

const JSON_TYPE = { "content-type": "application/json" };

describe("routing", () => {
  // Unknown paths answer 404 in the contract's shape, not itty's default.
  it.each(["/nope", "/rooms", "/rooms/lobby", "/rooms/lobby/nope", "/rooms/lobby/messages/extra", "/rooms//messages"])("%s → 404 not_found", async (path) => {
    await expectError(await get(path, token), 404, "not_found");
  });

  // A known path with another method answers 405 and says which methods it allows.
  it.each([
    ["PUT", "/rooms/lobby/messages", "GET, POST"],
    ["DELETE", "/rooms/lobby/messages", "GET, POST"],
    ["POST", "/rooms/lobby/ws", "GET"],
    ["GET", "/rooms/lobby/notify", "POST"],
    ["GET", "/notify", "POST"],
    ["PATCH", "/health", "GET"],
  ])("%s %s → 405 method_not_allowed", async (method, path, allow) => {
    const response = await call(path, { method, headers: { authorization: `Bearer ${token}` } });
    expect(response.headers.get("allow")).toBe(allow);
    await expectError(response, 405, "method_not_allowed");
  });

  // A plain GET on the WebSocket route is told to upgrade.
  it("/ws without Upgrade → 426 upgrade_required", async () => {
    await expectError(await get("/rooms/lobby/ws", token), 426, "upgrade_required");
    await expectError(await call(`/rooms/lobby/ws?token=${token}`, { headers: { upgrade: "h2c" } }), 426, "upgrade_required");
  });
});

describe("room ids", () => {
  const longest = "a".repeat(164);
  const bad = [
    ["too long", "a".repeat(165)],
    ["a space", "a%20b"],
    ["a slash (encoded)", "a%2Fb"],
    ["non-ASCII", "caf%C3%A9"],
    ["a quote", "a%22b"],
    ["broken percent-encoding", "%E0%A4%A"],
    ["a bare percent", "%ZZ"],
    ["a percent sign", "a%25b"],
    ["a star", "a*"],
  ];

  // The longest legal id and every legal punctuation mark are accepted.
  it("accepts ids of 164 characters from the allowed set", async () => {
    for (const room of [longest, "A-z_0=9@x,y.z;w:v"]) {
      const response = await postJson(`/rooms/${room}/messages`, { data: { text: "ok" } }, token);
      expect(response.status).toBe(201);
      expect(((await response.json()) as any).message.room).toBe(room);
    }
  });

  // Each kind of bad id is 400 invalid_room, on every room route, before auth.
  it.each(bad)("%s → 400 invalid_room on every room route", async (_, raw) => {
    await expectError(await get(`/rooms/${raw}/messages`, token), 400, "invalid_room");
    await expectError(await postJson(`/rooms/${raw}/messages`, { data: { text: "x" } }, token), 400, "invalid_room");
    await expectError(await call(`/rooms/${raw}/ws?token=${token}`, { headers: { upgrade: "websocket" } }), 400, "invalid_room");
    await expectError(await get(`/rooms/${raw}/events`, token), 400, "invalid_room");
    await expectError(await postJson(`/rooms/${raw}/typing`, {}, token), 400, "invalid_room");
    await expectError(await postJson(`/rooms/${raw}/read`, { seq: 0 }, token), 400, "invalid_room");
    await expectError(await get(`/rooms/${raw}/presence`, token), 400, "invalid_room");
    await expectError(await postJson(`/rooms/${raw}/notify`, { event: "e", data: {} }, env.NOTIFY_SECRET), 400, "invalid_room");
    await expectError(await get(`/rooms/${raw}/status`, env.NOTIFY_SECRET), 400, "invalid_room");
    // No token at all: the id is still checked first.
    await expectError(await get(`/rooms/${raw}/messages`), 400, "invalid_room");
  });

  // Legacy session ids must be numbers.
  it("legacy session ids that are not numbers → 400 invalid_room", async () => {
    await expectError(await get("/api/chat/messages/abc", token), 400, "invalid_room");
    await expectError(await postJson("/api/chat/message", { chat_session_id: "12a", message: "x" }, token), 400, "invalid_body");
  });
});

describe("request bodies", () => {
  const room = uniqueRoom("bodies");
  const path = `/rooms/${room}/messages`;
  const MAX = 16384;

  // JSON bodies need Content-Type: application/json (parameters allowed).
  it("wrong or missing content type → 415 unsupported_media_type", async () => {
    const body = JSON.stringify({ data: { text: "hi" } });
    await expectError(await post(path, body, { "content-type": "text/plain" }), 415, "unsupported_media_type");
    await expectError(await post(path, body, { "content-type": "application/x-www-form-urlencoded" }), 415, "unsupported_media_type");
    await expectError(await post(path, body, { "content-type": "application/jsonp" }), 415, "unsupported_media_type");
    await expectError(await post(path, body, {}), 415, "unsupported_media_type");
    const ok = await post(path, body, { "content-type": "application/json; charset=utf-8" });
    expect(ok.status).toBe(201);
  });

  // Malformed JSON, an empty body and invalid UTF-8 are invalid_body.
  it("bad JSON → 400 invalid_body", async () => {
    for (const body of ["{", "{data:{text:'x'}}", "", "null", "[]", '"text"']) {
      await expectError(await post(path, body, JSON_TYPE), 400, "invalid_body");
    }
    await expectError(await post(path, new Uint8Array([0x7b, 0xff, 0x7d]), JSON_TYPE), 400, "invalid_body");
  });

  // Schema failures name the failing field.
  it.each([
    ["missing data", {}, "data"],
    ["data is an array", { data: ["text"] }, "data"],
    ["data is a string", { data: "hi" }, "data"],
    ["data is null", { data: null }, "data"],
    ["data without text", { data: { body: "hi" } }, "data"],
    ["empty text", { data: { text: "" } }, "data"],
    ["text not a string", { data: { text: 42 } }, "data"],
    ["clientId not a string", { data: { text: "x" }, clientId: 7 }, "clientId"],
    ["clientId too long", { data: { text: "x" }, clientId: "c".repeat(129) }, "clientId"],
  ])("send with %s → 400 invalid_body naming the field", async (_, body, field) => {
    const message = await expectError(await postJson(path, body, token), 400, "invalid_body");
    expect(message).toContain(field);
  });

  // MAX_MESSAGE_BYTES counts the serialized data: at the limit is fine, one byte over is 413.
  it("data one byte over MAX_MESSAGE_BYTES → 413 payload_too_large", async () => {
    const wrapper = JSON.stringify({ text: "" }).length;
    const atLimit = { text: "x".repeat(MAX - wrapper) };
    expect(JSON.stringify(atLimit).length).toBe(MAX);
    const accepted = await postJson(path, { data: atLimit }, token);
    expect(accepted.status).toBe(201);
    const over = { text: "x".repeat(MAX - wrapper + 1) };
    await expectError(await postJson(path, { data: over }, token), 413, "payload_too_large");
    // Multi-byte characters count as bytes, not characters.
    const euros = { text: "€".repeat(Math.ceil(MAX / 3)) };
    await expectError(await postJson(path, { data: euros }, token), 413, "payload_too_large");
  });

  // A rejected send uses no seq: the next accepted message follows the last accepted one.
  it("rejected sends consume no seq", async () => {
    const fresh = uniqueRoom("noseq");
    expect((await postJson(`/rooms/${fresh}/messages`, { data: { text: "1" } }, token)).status).toBe(201);
    await postJson(`/rooms/${fresh}/messages`, { data: { text: "x".repeat(MAX) } }, token);
    await postJson(`/rooms/${fresh}/messages`, { data: {} }, token);
    const next = await postJson(`/rooms/${fresh}/messages`, { data: { text: "2" } }, token);
    expect(((await next.json()) as any).message.seq).toBe(2);
  });

  // Bodies far beyond any limit are refused by the Worker before they reach the room.
  it("a huge body → 413 payload_too_large, declared or streamed", async () => {
    const huge = JSON.stringify({ data: { text: "x".repeat(200_000) } });
    await expectError(await post(path, huge, JSON_TYPE), 413, "payload_too_large");
    const stream = new Blob([huge]).stream();
    await expectError(await post(path, stream, JSON_TYPE), 413, "payload_too_large");
  });

  // Every JSON route applies the same body rules.
  it.each([
    [`/rooms/${room}/read`, token],
    [`/rooms/${room}/notify`, env.NOTIFY_SECRET],
    ["/notify", env.NOTIFY_SECRET],
    ["/api/chat/message", token],
  ])("%s: 415, bad JSON and 413 too", async (route, bearer) => {
    await expectError(await post(route, "{}", { "content-type": "text/plain" }, bearer), 415, "unsupported_media_type");
    await expectError(await post(route, "{oops", JSON_TYPE, bearer), 400, "invalid_body");
    await expectError(await post(route, "x".repeat(100_000), JSON_TYPE, bearer), 413, "payload_too_large");
  });

  // Read receipts: seq must be a non-negative integer no greater than the room's last seq.
  it("read with a bad seq → 400 invalid_body", async () => {
    for (const body of [{}, { seq: -1 }, { seq: 1.5 }, { seq: "3" }, { seq: 10_000 }]) {
      await expectError(await postJson(`/rooms/${room}/read`, body, token), 400, "invalid_body");
    }
  });

  // Notify bodies: event name pattern, data object, from shape.
  it.each([
    ["missing event", { data: {} }],
    ["bad event name", { event: "has space", data: {} }],
    ["event name too long", { event: "e".repeat(65), data: {} }],
    ["missing data", { event: "e" }],
    ["data an array", { event: "e", data: [1] }],
    ["from without id", { event: "e", data: {}, from: { name: "x" } }],
    ["push of the wrong type", { event: "e", data: {}, push: "yes" }],
  ])("notify with %s → 400 invalid_body", async (_, body) => {
    await expectError(await postJson(`/rooms/${room}/notify`, body, env.NOTIFY_SECRET), 400, "invalid_body");
  });

  // Notify data has the same size limit as sends.
  it("notify data over MAX_MESSAGE_BYTES → 413", async () => {
    await expectError(await postJson(`/rooms/${room}/notify`, { event: "big", data: { blob: "x".repeat(MAX) } }, env.NOTIFY_SECRET), 413, "payload_too_large");
  });
});

describe("queries", () => {
  const room = uniqueRoom("queries");

  // Non-numeric, negative, fractional or repeated cursors are invalid_query; so is limit > 1000.
  it.each([
    "after=abc",
    "after=-1",
    "after=1.5",
    "after=",
    "after=1&after=2",
    "before=x",
    "before=0",
    "limit=abc",
    "limit=0",
    "limit=1001",
    "limit=99999",
    "wait=soon",
    "wait=-1",
    "wait=5", // wait needs after=
    "after=1e3",
  ])("GET messages?%s → 400 invalid_query", async (query) => {
    await expectError(await get(`/rooms/${room}/messages?${query}`, token), 400, "invalid_query");
  });

  // limit=1000 is the largest page.
  it("limit=1000 is allowed", async () => {
    const response = await get(`/rooms/${room}/messages?after=0&limit=1000`, token);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ messages: [], seq: 0 });
  });

  // The streaming routes validate their cursors too.
  it("bad cursors on /ws, /events and Last-Event-ID → 400 invalid_query", async () => {
    await expectError(await call(`/rooms/${room}/ws?token=${token}&after=x`, { headers: { upgrade: "websocket" } }), 400, "invalid_query");
    await expectError(await get(`/rooms/${room}/events?after=x`, token), 400, "invalid_query");
    await expectError(await get(`/rooms/${room}/events`, token, { "last-event-id": "nope" }), 400, "invalid_query");
    await expectError(await get(`/api/chat/messages/7?lastMessageId=x`, token), 400, "invalid_query");
  });
});

describe("WebSocket frames", () => {
  // Bad frames get an error frame and the socket stays usable.
  it("answers bad frames with error frames and keeps the socket open", async () => {
    const room = uniqueRoom("frames");
    const socket = await TestSocket.open(room, token);
    await socket.next((f) => f.type === "welcome");
    socket.send("{not json");
    expect(await socket.next((f) => f.type === "error")).toMatchObject({ code: "invalid_body" });
    socket.send({ type: "send", data: { text: "" }, clientId: "c1" });
    expect(await socket.next((f) => f.type === "error")).toMatchObject({ code: "invalid_body", clientId: "c1" });
    socket.send({ type: "teleport" });
    expect(await socket.next((f) => f.type === "error")).toMatchObject({ code: "invalid_body" });
    socket.send({ type: "send", data: { text: "x".repeat(16384) }, clientId: "big" });
    expect(await socket.next((f) => f.type === "error")).toMatchObject({ code: "payload_too_large", clientId: "big" });
    socket.send({ type: "send", data: { text: "x".repeat(40_000) }, clientId: "huge" });
    expect(await socket.next((f) => f.type === "error")).toMatchObject({ code: "payload_too_large" });
    // Still open, and nothing was given a seq.
    socket.send({ type: "send", data: { text: "fine" }, clientId: "ok" });
    expect(await socket.next((f) => f.type === "ack")).toMatchObject({ clientId: "ok", seq: 1 });
    expect(socket.closed).toBe(false);
    socket.close();
  });
});
