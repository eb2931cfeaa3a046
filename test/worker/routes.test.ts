/**
 * Happy path of every route: what a client, a trigger or an operator sees
 * when everything is right (SPEC §4, §5, §9 and the status route).
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, notify, postJson, tokenFor, TestSocket } from "./helpers";
import { get, range, roomStatus, seqsOf, uniqueRoom } from "./support";

const ENVELOPE_KEYS = ["room", "seq", "id", "event", "from", "data", "ts", "clientId"];

describe("native routes", () => {
  // GET /health needs no auth.
  it("GET /health", async () => {
    const response = await call("/health");
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ok: true });
  });

  // POST messages → 201 with the full envelope; GET messages returns it; a socket receives it.
  it("POST and GET /rooms/:room/messages, and the WebSocket, share one envelope", async () => {
    const room = uniqueRoom("routes");
    const alice = await tokenFor("alice");
    const socket = await TestSocket.open(room, alice);
    expect(await socket.next((f) => f.type === "welcome")).toEqual({
      type: "welcome",
      room,
      seq: 0,
      user: { id: "alice", name: "Alice" },
      presence: [{ id: "alice", name: "Alice", connections: 1 }],
    });
    const response = await postJson(`/rooms/${room}/messages`, { data: { text: "hello", extra: { n: 1 } }, clientId: "c-1" }, alice);
    expect(response.status).toBe(201);
    expect(response.headers.get("content-type")).toMatch(/^application\/json/);
    const { message } = (await response.json()) as any;
    expect(Object.keys(message)).toEqual(ENVELOPE_KEYS);
    expect(message).toMatchObject({ room, seq: 1, event: "message", from: { id: "alice", name: "Alice" }, data: { text: "hello", extra: { n: 1 } }, clientId: "c-1" });
    expect(message.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Date(message.ts).toISOString()).toBe(message.ts);
    expect((await socket.untilMessages(1))[0]).toEqual(message);
    const history = await get(`/rooms/${room}/messages`, alice);
    expect(await history.json()).toEqual({ messages: [message], seq: 1 });
    socket.close();
  });

  // A send without clientId has no clientId key at all.
  it("omits clientId when none was given", async () => {
    const room = uniqueRoom("routes");
    const response = await postJson(`/rooms/${room}/messages`, { data: { text: "x" } }, await tokenFor("alice"));
    const { message } = (await response.json()) as any;
    expect("clientId" in message).toBe(false);
  });

  // Sending over WebSocket: ack to the sender, the message to everyone, the sender included.
  it("WebSocket send → ack to the sender and the message to all", async () => {
    const room = uniqueRoom("routes");
    const alice = await TestSocket.open(room, await tokenFor("alice"));
    const bob = await TestSocket.open(room, await tokenFor("bob"));
    await alice.next((f) => f.type === "welcome");
    await bob.next((f) => f.type === "welcome");
    alice.send({ type: "send", data: { text: "hi bob" }, clientId: "a1" });
    const ack = await alice.next((f) => f.type === "ack");
    expect(Object.keys(ack).sort()).toEqual(["clientId", "id", "seq", "type"]);
    expect(ack).toMatchObject({ clientId: "a1", seq: 1 });
    const [toAlice] = await alice.untilMessages(1);
    const [toBob] = await bob.untilMessages(1);
    expect(toAlice).toEqual(toBob);
    expect(toBob).toMatchObject({ seq: 1, id: ack.id, from: { id: "alice" }, data: { text: "hi bob" }, clientId: "a1" });
    alice.close();
    bob.close();
  });

  // Pings: the JSON frame and the bare text form.
  it("answers ping frames", async () => {
    const socket = await TestSocket.open(uniqueRoom("routes"), await tokenFor("alice"));
    await socket.next((f) => f.type === "welcome");
    socket.send("ping");
    expect(await socket.next((f) => f === "pong")).toBe("pong");
    socket.send({ type: "ping" });
    expect(await socket.next((f) => f.type === "pong")).toEqual({ type: "pong" });
    socket.close();
  });

  // Typing → 204, shown to the others but not to the typist.
  it("POST typing → 204 and a typing signal to the others", async () => {
    const room = uniqueRoom("routes");
    const aliceToken = await tokenFor("alice");
    const alice = await TestSocket.open(room, aliceToken);
    const bob = await TestSocket.open(room, await tokenFor("bob"));
    await alice.next((f) => f.type === "welcome");
    await bob.next((f) => f.type === "welcome");
    const response = await postJson(`/rooms/${room}/typing`, {}, aliceToken);
    expect(response.status).toBe(204);
    expect(await bob.next((f) => f.type === "typing")).toEqual({ type: "typing", user: { id: "alice", name: "Alice" } });
    // Alice's own socket gets no typing frame: a later message arrives with none before it.
    await postJson(`/rooms/${room}/messages`, { data: { text: "x" } }, aliceToken);
    await alice.untilMessages(1);
    expect(alice.frames.some((f) => f.type === "typing")).toBe(false);
    alice.close();
    bob.close();
  });

  // Read → 204 and a read signal to everyone.
  it("POST read → 204 and a read signal", async () => {
    const room = uniqueRoom("routes");
    const aliceToken = await tokenFor("alice");
    const bob = await TestSocket.open(room, await tokenFor("bob"));
    await bob.next((f) => f.type === "welcome");
    await postJson(`/rooms/${room}/messages`, { data: { text: "x" } }, aliceToken);
    const response = await postJson(`/rooms/${room}/read`, { seq: 1 }, aliceToken);
    expect(response.status).toBe(204);
    expect(await bob.next((f) => f.type === "read")).toEqual({ type: "read", user: { id: "alice", name: "Alice" }, seq: 1 });
    bob.close();
  });

  // Presence lists everyone holding a connection, with their connection count.
  it("GET presence", async () => {
    const room = uniqueRoom("routes");
    const aliceToken = await tokenFor("alice");
    const a1 = await TestSocket.open(room, aliceToken);
    const a2 = await TestSocket.open(room, aliceToken);
    const bob = await TestSocket.open(room, await tokenFor("bob"));
    await Promise.all([a1, a2, bob].map((s) => s.next((f) => f.type === "welcome")));
    const response = await get(`/rooms/${room}/presence`, aliceToken);
    expect(response.status).toBe(200);
    const { members } = (await response.json()) as any;
    expect(members.sort((x: any, y: any) => x.id.localeCompare(y.id))).toEqual([
      { id: "alice", name: "Alice", connections: 2 },
      { id: "bob", name: "Bob", connections: 1 },
    ]);
    for (const s of [a1, a2, bob]) s.close();
  });

  // SSE answers with an event stream that starts with retry: and carries messages with id: <seq>.
  it("GET events streams retry: then messages", async () => {
    const room = uniqueRoom("routes");
    const token = await tokenFor("alice");
    await postJson(`/rooms/${room}/messages`, { data: { text: "before" } }, token);
    const controller = new AbortController();
    const response = await call(`/rooms/${room}/events?after=0`, { headers: { authorization: `Bearer ${token}` }, signal: controller.signal });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes('"text":"before"')) {
      const { done, value } = await reader.read();
      if (done) break;
      text += value;
    }
    expect(text.startsWith("retry: ")).toBe(true);
    expect(text).toMatch(/id: 1\nevent: message\ndata: \{"room":/);
    await reader.cancel();
    controller.abort();
  });

  // Operators read a room's counters with NOTIFY_SECRET.
  it("GET status", async () => {
    const room = uniqueRoom("routes");
    await notify(room, { event: "e", data: {} });
    const status = await roomStatus(room);
    expect(status).toMatchObject({ seq: 1, subscribers: 0 });
    expect(status.outbox).toHaveProperty("pending");
  });
});

describe("notify", () => {
  // POST notify → 202 with an envelope; no `from` key unless given; delivered to sockets.
  it("POST /rooms/:room/notify → 202 and delivery", async () => {
    const room = uniqueRoom("notify");
    const socket = await TestSocket.open(room, await tokenFor("alice"));
    await socket.next((f) => f.type === "welcome");
    const response = await notify(room, { event: "ticket_assigned", data: { ticket: 7 }, push: false });
    expect(response.status).toBe(202);
    const { message } = (await response.json()) as any;
    expect(Object.keys(message)).toEqual(["room", "seq", "id", "event", "data", "ts"]);
    expect(message).toMatchObject({ room, seq: 1, event: "ticket_assigned", data: { ticket: 7 } });
    expect((await socket.untilMessages(1))[0]).toEqual(message);
    const withFrom = await notify(room, { event: "note", data: {}, from: { id: "system", name: "Bot" } });
    expect(((await withFrom.json()) as any).message).toMatchObject({ seq: 2, from: { id: "system", name: "Bot" } });
    socket.close();
  });

  // Batch notify publishes one event to each room and answers one envelope per room, in order.
  it("POST /notify → one envelope per room, each delivered", async () => {
    const rooms = [uniqueRoom("batch-a"), uniqueRoom("batch-b"), uniqueRoom("batch-c")];
    await notify(rooms[1]!, { event: "warmup", data: {} }); // room b already has seq 1
    const token = await tokenFor("alice");
    const sockets = await Promise.all(rooms.map((r) => TestSocket.open(r, token)));
    await Promise.all(sockets.map((s) => s.next((f) => f.type === "welcome")));
    const response = await postJson("/notify", { rooms, event: "announcement", data: { text: "maintenance at 5" } }, env.NOTIFY_SECRET);
    expect(response.status).toBe(202);
    const { messages } = (await response.json()) as any;
    expect(messages.map((m: any) => [m.room, m.seq])).toEqual([[rooms[0], 1], [rooms[1], 2], [rooms[2], 1]]);
    for (const [i, socket] of sockets.entries()) {
      const received = await socket.untilMessages(1);
      expect(received.at(-1)).toEqual(messages[i]);
      socket.close();
    }
  });

  // 100 rooms is the batch limit; 101 is refused and publishes nothing.
  it("POST /notify to 100 rooms works, 101 → 400", async () => {
    const prefix = uniqueRoom("many");
    const hundred = range(1, 100).map((i) => `${prefix}-${i}`);
    const ok = await postJson("/notify", { rooms: hundred, event: "e", data: {} }, env.NOTIFY_SECRET);
    expect(ok.status).toBe(202);
    expect(((await ok.json()) as any).messages).toHaveLength(100);
    const tooMany = [...hundred, `${prefix}-101`];
    const refused = await postJson("/notify", { rooms: tooMany, event: "e", data: {} }, env.NOTIFY_SECRET);
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as any).error.message).toContain("rooms");
    expect((await roomStatus(`${prefix}-101`)).seq).toBe(0);
    expect((await roomStatus(`${prefix}-1`)).seq).toBe(1);
  });

  // Empty lists, repeated rooms and bad room ids are refused before anything is published.
  it("POST /notify with no rooms, a repeated room or a bad room id → 400", async () => {
    const good = uniqueRoom("batch-good");
    for (const rooms of [[], [good, good], "not-a-list"]) {
      const response = await postJson("/notify", { rooms, event: "e", data: {} }, env.NOTIFY_SECRET);
      expect(response.status).toBe(400);
      expect(((await response.json()) as any).error.code).toBe("invalid_body");
    }
    // A bad id is `invalid_room`, as on every other route, and names its place in the list.
    const bad = await postJson("/notify", { rooms: [good, "bad room"], event: "e", data: {} }, env.NOTIFY_SECRET);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as any).error).toMatchObject({ code: "invalid_room", message: expect.stringContaining("rooms.1") });
    expect((await roomStatus(good)).seq).toBe(0);
  });
});

describe("legacy polling API", () => {
  // POST /api/chat/message answers the seq; GET returns the legacy row shape.
  it("posts and polls a chat session", async () => {
    const token = await tokenFor("agent7", { rooms: ["chat-session:*"], role: "agent", name: "Agent Seven" });
    const session = Math.floor(Math.random() * 1e9);
    const posted = await postJson("/api/chat/message", { chat_session_id: session, message: "Bonjour !" }, token);
    expect(posted.status).toBe(200);
    expect(await posted.json()).toEqual({ success: true, messageId: 1 });
    const polled = await get(`/api/chat/messages/${session}?lastMessageId=0`, token);
    const body = (await polled.json()) as any;
    expect(body.longPolling).toBe(false);
    expect(body.messages).toHaveLength(1);
    expect(body.messages[0]).toMatchObject({ id: 1, chat_session_id: session, sender_type: "agent", sender_id: "agent7", sender_name: "Agent Seven", message: "Bonjour !", is_read: false });
    expect(body.messages[0].created_at).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    // The same session is the room chat-session:N for native clients.
    const native = await get(`/rooms/chat-session:${session}/messages?after=0`, token);
    expect(seqsOf(((await native.json()) as any).messages)).toEqual([1]);
  });
});
