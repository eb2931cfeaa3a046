/**
 * Presence across transports: join/leave seen by others, one member per user
 * with a connection count, a grace period against flapping, and state rebuilt
 * after the object hibernates.
 */
import { evictDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, openSse, tokenFor, TestSocket } from "./helpers";

const presenceOf = async (room: string, token: string) =>
  ((await (await call(`/rooms/${room}/presence`, { headers: { authorization: `Bearer ${token}` } })).json()) as any).members;

/** Alice and Bob, each with one WebSocket in `room` that has had its welcome. */
async function aliceAndBob(room: string) {
  const alice = await tokenFor("alice");
  const bob = await tokenFor("bob");
  const a = await TestSocket.open(room, alice);
  const b = await TestSocket.open(room, bob);
  await a.next((f) => f.type === "welcome");
  await b.next((f) => f.type === "welcome");
  return { alice, bob, a, b };
}

describe("presence", () => {
  it("announces a user's first connection and lists each user once with a count", async () => {
    const room = "presence-count";
    const alice = await tokenFor("alice");
    const bob = await tokenFor("bob");
    const watcher = await TestSocket.open(room, alice);
    await watcher.next((f) => f.type === "welcome");

    const bob1 = await TestSocket.open(room, bob);
    const welcome = await bob1.next((f) => f.type === "welcome");
    expect(welcome.presence.map((m: any) => m.id).sort()).toEqual(["alice", "bob"]);
    expect(await watcher.next((f) => f.type === "presence")).toEqual({ type: "presence", action: "join", user: { id: "bob", name: "Bob" } });

    const bob2 = await TestSocket.open(room, bob);
    await bob2.next((f) => f.type === "welcome");
    const members = await presenceOf(room, alice);
    expect(members).toContainEqual({ id: "bob", name: "Bob", connections: 2 });
    expect(members).toHaveLength(2);
    // A second connection of the same user is not a second join.
    expect(watcher.frames.filter((f) => f.type === "presence")).toHaveLength(0);
    for (const s of [watcher, bob1, bob2]) s.close();
  });

  it("announces leave only after the grace period, and not at all on a quick reconnect", async () => {
    const room = "presence-grace";
    const alice = await tokenFor("alice");
    const bob = await tokenFor("bob");
    const watcher = await TestSocket.open(room, alice);
    await watcher.next((f) => f.type === "welcome");
    const first = await TestSocket.open(room, bob);
    await watcher.next((f) => f.type === "presence" && f.action === "join");

    first.close();
    const again = await TestSocket.open(room, bob); // back within PRESENCE_GRACE_MS (200 ms in tests)
    await again.next((f) => f.type === "welcome");
    again.close();
    const leave = await watcher.next((f) => f.type === "presence");
    expect(leave).toEqual({ type: "presence", action: "leave", user: { id: "bob", name: "Bob" } });
    // Exactly one leave and no second join: the reconnect did not flap.
    expect(watcher.frames.filter((f) => f.type === "presence")).toHaveLength(0);
    watcher.close();
  });

  it("counts SSE and long-poll members, and SSE members receive presence signals", async () => {
    const room = "presence-transports";
    const alice = await tokenFor("alice");
    const carol = await tokenFor("carol");
    const dave = await tokenFor("dave");
    const stream = await openSse(room, carol);
    await stream.until("retry:");

    // dave long-polls (a quick poll without wait counts for 30 s)
    const poll = await call(`/rooms/${room}/messages?after=0`, { headers: { authorization: `Bearer ${dave}` } });
    expect(poll.status).toBe(200);
    const members = await presenceOf(room, alice);
    expect(members.map((m: any) => m.id).sort()).toEqual(["carol", "dave"]);

    const socket = await TestSocket.open(room, alice);
    await stream.until('"action":"join","user":{"id":"alice"');
    const text = await stream.until("event: presence");
    expect(text).toMatch(/event: presence\ndata: \{"type":"presence","action":"join"/);
    await stream.close();
    socket.close();
  });

  it("others see a long-poll member join, and an SSE member join and leave", async () => {
    const room = "presence-seen";
    const alice = await tokenFor("alice");
    const watcher = await TestSocket.open(room, alice);
    await watcher.next((f) => f.type === "welcome");

    await call(`/rooms/${room}/messages?after=0`, { headers: { authorization: `Bearer ${await tokenFor("dave")}` } });
    expect(await watcher.next((f) => f.type === "presence")).toEqual({ type: "presence", action: "join", user: { id: "dave", name: "Dave" } });

    const stream = await openSse(room, await tokenFor("carol"));
    await stream.until("retry:");
    expect(await watcher.next((f) => f.type === "presence")).toEqual({ type: "presence", action: "join", user: { id: "carol", name: "Carol" } });
    await stream.close();
    expect(await watcher.next((f) => f.type === "presence")).toEqual({ type: "presence", action: "leave", user: { id: "carol", name: "Carol" } });
    watcher.close();
  });

  it("is rebuilt from the sockets' attachments after hibernation", async () => {
    const room = "presence-hibernation";
    const { alice, bob, a, b } = await aliceAndBob(room);
    await evictDurableObject(env.ROOMS.get(env.ROOMS.idFromName(room)));
    const members = await presenceOf(room, alice);
    expect(members.map((m: any) => [m.id, m.connections]).sort()).toEqual([["alice", 1], ["bob", 1]]);
    a.close();
    b.close();
  });
});

describe("typing", () => {
  it("reaches everyone but the typist, throttled per user, over WebSocket and HTTP", async () => {
    const room = "typing";
    const { alice, bob, a, b } = await aliceAndBob(room);

    a.send({ type: "typing" });
    a.send({ type: "typing" }); // throttled: within a second of the first
    expect(await b.next((f) => f.type === "typing")).toEqual({ type: "typing", user: { id: "alice", name: "Alice" } });

    const response = await call(`/rooms/${room}/typing`, { method: "POST", headers: { authorization: `Bearer ${bob}` } });
    expect(response.status).toBe(204);
    expect(await a.next((f) => f.type === "typing")).toEqual({ type: "typing", user: { id: "bob", name: "Bob" } });

    // A message after the signals proves ordering: by now every typing frame has arrived.
    a.send({ type: "send", data: { text: "done" }, clientId: "x" });
    await b.untilMessages(1);
    await a.untilMessages(1);
    expect(b.frames.filter((f) => f.type === "typing")).toHaveLength(0); // the throttled second one never came
    expect(a.frames.filter((f) => f.type === "typing")).toHaveLength(0); // alice never saw her own
    const history = await (await call(`/rooms/${room}/messages?after=0`, { headers: { authorization: `Bearer ${alice}` } })).json() as any;
    expect(history.messages.map((m: any) => m.event)).toEqual(["message"]); // signals are not stored
    a.close();
    b.close();
  });
});

describe("read receipts", () => {
  it("are stored, broadcast, monotonic, and bounded by the room's last seq", async () => {
    const room = "reads";
    const alice = await tokenFor("alice");
    const bob = await tokenFor("bob");
    const b = await TestSocket.open(room, bob);
    await b.next((f) => f.type === "welcome");
    for (let i = 0; i < 3; i++) {
      await call(`/rooms/${room}/messages`, { method: "POST", headers: { authorization: `Bearer ${alice}`, "content-type": "application/json" }, body: JSON.stringify({ data: { text: `m${i}` } }) });
    }
    const read = (seq: unknown) => call(`/rooms/${room}/read`, { method: "POST", headers: { authorization: `Bearer ${alice}`, "content-type": "application/json" }, body: JSON.stringify({ seq }) });
    expect((await read(2)).status).toBe(204);
    expect(await b.next((f) => f.type === "read")).toEqual({ type: "read", user: { id: "alice", name: "Alice" }, seq: 2 });

    expect((await read(1)).status).toBe(204); // older: accepted, no effect, no broadcast
    const beyond = await read(4);
    expect(beyond.status).toBe(400);
    expect(((await beyond.json()) as any).error.code).toBe("invalid_body");
    const negative = await read(-1);
    expect(negative.status).toBe(400);

    b.send({ type: "read", seq: 3 });
    expect(await b.next((f) => f.type === "read")).toEqual({ type: "read", user: { id: "bob", name: "Bob" }, seq: 3 });
    b.send({ type: "read", seq: 99 });
    expect(await b.next((f) => f.type === "error")).toMatchObject({ code: "invalid_body" });
    // No read frame for alice's seq 1 ever arrived.
    expect(b.frames.filter((f) => f.type === "read")).toHaveLength(0);

    // The pointers live in the room's storage: after eviction, an older receipt still moves nothing.
    await evictDurableObject(env.ROOMS.get(env.ROOMS.idFromName(room)));
    // (Sequential HTTP calls: had the pointer been lost, the read of 2 would broadcast first.)
    expect((await read(2)).status).toBe(204);
    expect((await read(3)).status).toBe(204);
    expect(await b.next((f) => f.type === "read")).toEqual({ type: "read", user: { id: "alice", name: "Alice" }, seq: 3 });
    b.close();
  });
});
