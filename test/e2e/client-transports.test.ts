/**
 * The client library in Node against the shared `wrangler dev`: each
 * transport carries a conversation, fallback when routes are refused, the
 * way back to WebSocket, dedupe, token refresh and fatal errors.
 */
import { afterEach, describe, expect, inject, it } from "vitest";
import { tokenFor } from "./clients";
import {
  attemptFailed,
  eventually,
  expectGapFree,
  hookedWebSocket,
  open,
  RefusedEventSource,
  RefusedWebSocket,
  waitConnected,
  type Recorded,
} from "./client-helpers";

const base = inject("serverUrl");
const rooms: Recorded[] = [];
const track = (r: Recorded) => (rooms.push(r), r);
let counter = 0;
const newRoom = (label: string) => `client-${label}-${Date.now()}-${counter++}`;

afterEach(() => {
  for (const r of rooms.splice(0)) r.room.close();
});

describe("client library: transports", () => {
  it.each(["websocket", "sse", "longpoll"] as const)("%s: sends, receives in order, acks with the seq", async (transport) => {
    const room = newRoom(transport);
    const alice = track(open(base, room, { token: await tokenFor("alice"), transports: [transport] }));
    const bob = track(open(base, room, { token: await tokenFor("bob"), transports: [transport] }));
    await waitConnected(alice, transport);
    await waitConnected(bob, transport);

    const acks = [];
    for (const text of ["one", "two", "three"]) acks.push(await alice.room.send({ text }));
    acks.push(await bob.room.send("four"));
    expect(acks.map((a) => a.seq)).toEqual([1, 2, 3, 4]);
    expect(acks[0]!.clientId).toMatch(/^c-/);

    for (const r of [alice, bob]) {
      await eventually(() => r.messages.length === 4, `${r.room.user?.id} gets 4 messages`);
      expect(r.texts()).toEqual(["one", "two", "three", "four"]);
      expect(r.messages[0]).toMatchObject({ room, seq: 1, event: "message", from: { id: "alice", name: "alice" }, clientId: acks[0]!.clientId });
    }
    expect(alice.room.seq).toBe(4);
    expect(alice.errors).toEqual([]);
  });

  it("presence, typing and read receipts reach the other side (WebSocket and SSE)", async () => {
    const room = newRoom("signals");
    const alice = track(open(base, room, { token: await tokenFor("alice"), transports: ["websocket"] }));
    await waitConnected(alice);
    const bob = track(open(base, room, { token: await tokenFor("bob"), transports: ["sse"] }));
    await waitConnected(bob, "sse");
    await eventually(() => alice.room.members.some((m) => m.id === "bob"), "alice sees bob join");
    await eventually(() => bob.room.members.some((m) => m.id === "alice"), "bob's presence list has alice");

    const typing: string[] = [];
    bob.room.on("typing", ({ user }) => typing.push(user.id));
    alice.room.typing();
    await eventually(() => typing.includes("alice"), "bob sees alice typing");

    const reads: string[] = [];
    alice.room.on("read", ({ user, seq }) => reads.push(`${user.id}:${seq}`));
    await alice.room.send("read me");
    await eventually(() => bob.messages.length === 1, "bob gets the message");
    bob.room.read(1);
    await eventually(() => reads.includes("bob:1"), "alice sees bob's read receipt");

    const carol = track(open(base, room, { token: await tokenFor("carol"), transports: ["websocket"] }));
    await eventually(() => alice.room.members.some((m) => m.id === "carol"), "alice sees carol join");
    carol.room.close();
    await eventually(() => !alice.room.members.some((m) => m.id === "carol"), "alice sees carol leave", 15_000);
  });

  it("history pages backwards, oldest first", async () => {
    const room = newRoom("history");
    const alice = track(open(base, room, { token: await tokenFor("alice") }));
    await waitConnected(alice);
    for (let i = 1; i <= 7; i++) await alice.room.send(`m${i}`);
    const newest = await alice.room.history({ limit: 3 });
    expect(newest.messages.map((m) => m.seq)).toEqual([5, 6, 7]);
    expect(newest.hasMore).toBe(true);
    const older = await alice.room.history({ before: 5, limit: 10 });
    expect(older.messages.map((m) => m.data.text)).toEqual(["m1", "m2", "m3", "m4"]);
    expect(older.hasMore).toBe(false);
  });
});

describe("client library: fallback", () => {
  it("falls back to SSE when the WebSocket route is refused, and still chats both ways", async () => {
    const room = newRoom("fallback-sse");
    const blocked = track(open(base, room, { token: await tokenFor("blocked"), WebSocket: RefusedWebSocket }));
    const normal = track(open(base, room, { token: await tokenFor("normal") }));
    await waitConnected(normal, "websocket");
    await waitConnected(blocked, "sse");
    // It tried WebSocket first, twice (maxTransportFailures), before falling back.
    const tried = blocked.statuses.filter((s) => s.state === "connecting").map((s) => s.state === "connecting" && s.transport);
    expect(tried[0]).toBe("websocket");

    await blocked.room.send("from behind the proxy");
    await normal.room.send("hello back");
    for (const r of [blocked, normal]) {
      await eventually(() => r.messages.length === 2, "both messages");
      expect(r.texts()).toEqual(["from behind the proxy", "hello back"]);
    }
  });

  it("falls back to long-poll when WebSocket and SSE are both refused", async () => {
    const room = newRoom("fallback-poll");
    const blocked = track(open(base, room, { token: await tokenFor("blocked"), WebSocket: RefusedWebSocket, EventSource: RefusedEventSource }));
    const normal = track(open(base, room, { token: await tokenFor("normal") }));
    await waitConnected(blocked, "longpoll");
    await waitConnected(normal, "websocket");
    await normal.room.send("ping over ws");
    await eventually(() => blocked.messages.length === 1, "long-poll client gets the message");
    const ack = await blocked.room.send("pong over http");
    expect(ack.seq).toBe(2);
    await eventually(() => normal.messages.length === 2, "ws client gets the reply");
    expect(normal.texts()).toEqual(["ping over ws", "pong over http"]);
    await eventually(() => blocked.room.members.some((m) => m.id === "normal"), "long-poll client sees presence (refreshed over HTTP)");
  });

  it("falls back when a WebSocket opens but dies repeatedly, then goes back to WebSocket when it works again", async () => {
    const room = newRoom("upgrade");
    let broken = true;
    const Flaky = hookedWebSocket({
      incoming: (data, deliver, socket) => {
        deliver(data);
        if (broken) socket.close(); // a proxy that kills every socket right after it opened
      },
    });
    const r = track(open(base, room, { token: await tokenFor("flaky"), WebSocket: Flaky, upgradeAfterMs: 300, maxUpgradeAfterMs: 600 }));
    await waitConnected(r, "sse");
    const other = track(open(base, room, { token: await tokenFor("other") }));
    await waitConnected(other);
    await other.room.send("while on sse");
    await eventually(() => r.messages.length === 1, "message over sse");

    broken = false;
    await waitConnected(r, "websocket");
    await other.room.send("after upgrade");
    await r.room.send("mine after upgrade");
    await eventually(() => r.messages.length === 3, "messages after the upgrade");
    expect(r.texts()).toEqual(["while on sse", "after upgrade", "mine after upgrade"]);
    expectGapFree(r.seqs());
  });
});

describe("client library: dedupe and resume", () => {
  it("never emits an event twice or out of order, even when the wire repeats and replays", async () => {
    const room = newRoom("dedupe");
    const sender = track(open(base, room, { token: await tokenFor("sender") }));
    await waitConnected(sender);
    for (let i = 1; i <= 3; i++) await sender.room.send(`early ${i}`);

    // Every frame delivered twice, and every message frame followed by a replay of the first message seen.
    let first: unknown;
    const Stuttering = hookedWebSocket({
      incoming: (data, deliver) => {
        deliver(data);
        deliver(data);
        if (typeof data === "string" && data.includes('"type":"message"')) {
          first ??= data;
          deliver(first);
        }
      },
    });
    const r = track(open(base, room, { token: await tokenFor("reader"), WebSocket: Stuttering, after: 0 }));
    await waitConnected(r, "websocket");
    for (let i = 4; i <= 6; i++) await sender.room.send(`late ${i}`);
    // A last message marks the end: the socket is in order, so any stray repeat would have come before it.
    await sender.room.send("late 7");
    await eventually(() => r.messages.some((m) => m.seq === 7), "the seventh message");
    expect(r.seqs()).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it("resumes from a saved cursor on every transport, with nothing missed and nothing repeated", async () => {
    const room = newRoom("cursor");
    const sender = track(open(base, room, { token: await tokenFor("sender") }));
    await waitConnected(sender);
    for (let i = 1; i <= 5; i++) await sender.room.send(`m${i}`);
    for (const transport of ["websocket", "sse", "longpoll"] as const) {
      const r = track(open(base, room, { token: await tokenFor(`r-${transport}`), transports: [transport], after: 2 }));
      await eventually(() => r.messages.length === 3, `${transport} replays after seq 2`);
      expect(r.seqs()).toEqual([3, 4, 5]);
    }
  });

  it("switching transports mid-conversation resumes from the last seq", async () => {
    const room = newRoom("switch");
    const sender = track(open(base, room, { token: await tokenFor("sender") }));
    await waitConnected(sender);
    let kill = false;
    const Killable = hookedWebSocket({ incoming: (data, deliver, socket) => (kill ? socket.close() : deliver(data)) });
    const r = track(open(base, room, { token: await tokenFor("mover"), WebSocket: Killable, stableAfterMs: 60_000 }));
    await waitConnected(r, "websocket");
    await sender.room.send("a");
    await sender.room.send("b");
    await eventually(() => r.messages.length === 2, "first two");
    kill = true; // from now on every WebSocket dies at its first frame: the client moves to SSE
    await sender.room.send("c");
    await waitConnected(r, "sse");
    await sender.room.send("d");
    await eventually(() => r.messages.length === 4, "all four");
    expect(r.texts()).toEqual(["a", "b", "c", "d"]);
  });
});

describe("client library: exactly-once sends", () => {
  it("a send whose ack is lost with the socket is retried with its clientId and stored once", async () => {
    const room = newRoom("lost-ack");
    let dropped = 0;
    const LosesFirstAck = hookedWebSocket({
      incoming: (data, deliver, socket) => {
        if (dropped === 0 && typeof data === "string" && data.includes('"type":"ack"')) {
          dropped++;
          socket.close(); // the message was stored; the client never hears so
          return;
        }
        deliver(data);
      },
    });
    const r = track(open(base, room, { token: await tokenFor("sender"), WebSocket: LosesFirstAck }));
    await waitConnected(r, "websocket");
    const ack = await r.room.send("only once");
    expect(dropped).toBe(1);
    expect(ack.seq).toBe(1);
    const second = await r.room.send("next");
    expect(second.seq).toBe(2);
    const page = await r.room.history({ limit: 10 });
    expect(page.messages.map((m) => m.data.text)).toEqual(["only once", "next"]);
    await eventually(() => r.messages.length === 2, "both messages on the stream");
    expect(r.texts()).toEqual(["only once", "next"]);
  });

  it("sends made while a connection cannot open are queued and delivered in order, once", async () => {
    const room = newRoom("queued");
    let allow = false;
    const Gate = hookedWebSocket({ url: (url) => (allow ? url : url.replace("/ws?", "/ws-blocked?")) });
    const r = track(open(base, room, { token: await tokenFor("queuer"), WebSocket: Gate, transports: ["websocket"] }));
    const sends = [r.room.send("q1"), r.room.send("q2"), r.room.send("q3")];
    await attemptFailed(r, 0, "the blocked WebSocket");
    expect(r.room.status.state).not.toBe("connected");
    expect(r.room.pendingSends).toBe(3);
    allow = true;
    const acks = await Promise.all(sends);
    expect(acks.map((a) => a.seq)).toEqual([1, 2, 3]);
    await eventually(() => r.messages.length === 3, "queued messages come back");
    expect(r.texts()).toEqual(["q1", "q2", "q3"]);
  });

  it("a server refusal rejects the send without blocking the queue", async () => {
    const room = newRoom("refused");
    const r = track(open(base, room, { token: await tokenFor("sender") }));
    await waitConnected(r);
    await expect(r.room.send({ text: "x".repeat(20_000) })).rejects.toMatchObject({ code: "payload_too_large" });
    await expect(r.room.send({ nottext: 1 })).rejects.toMatchObject({ code: "invalid_body" });
    expect((await r.room.send("fine")).seq).toBe(1);
  });
});

describe("client library: auth", () => {
  it("calls refreshToken when the server answers invalid_token, then connects", async () => {
    const room = newRoom("refresh");
    let refreshed = 0;
    // Signed with another secret: what a token looks like after the server's JWT_SECRET was rotated.
    const stale = await tokenFor("alice", { rooms: ["*"] }, "a-secret-the-server-does-not-use-0123");
    const r = track(
      open(base, room, {
        token: stale,
        refreshToken: async (error) => {
          expect(error.code).toBe("invalid_token");
          refreshed++;
          return tokenFor("alice");
        },
      }),
    );
    await waitConnected(r, "websocket");
    expect(refreshed).toBe(1);
    expect((await r.room.send("after refresh")).seq).toBe(1);
  });

  it("goes offline with the error when the room is not granted, and rejects sends", async () => {
    const room = newRoom("forbidden");
    const r = track(open(base, room, { token: await tokenFor("alice", { rooms: ["elsewhere"] }) }));
    const pending = r.room.send("never");
    await expect(r.room.whenConnected()).rejects.toMatchObject({ code: "forbidden_room" });
    await expect(pending).rejects.toMatchObject({ code: "forbidden_room" });
    expect(r.room.status).toMatchObject({ state: "offline", reason: "error" });
    expect(r.errors.map((e) => (e as { code?: string }).code)).toContain("forbidden_room");
  });

  it("without a refresh hook an invalid token takes the room offline", async () => {
    const r = track(open(base, newRoom("badtoken"), { token: "not-a-jwt" }));
    await expect(r.room.whenConnected()).rejects.toMatchObject({ code: "invalid_token" });
  });
});
