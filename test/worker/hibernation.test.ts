/**
 * ENGINEERING "hibernation": when the runtime evicts the room instance, its
 * hibernated WebSockets stay open, and a fresh instance over the same storage
 * continues the seq and still knows who each socket belongs to.
 */
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { notify, postJson, tokenFor, TestSocket } from "./helpers";
import { d1Messages, flushRoom, get, range, roomStatus, roomStub, seqsOf, uniqueRoom } from "./support";

/** Marks the live instance so a later look can tell whether it is still the same one. */
function markInstance(room: string): Promise<void> {
  return runInDurableObject(roomStub(room), (instance) => void ((instance as any).__testMark = true));
}
function isMarkedInstance(room: string): Promise<boolean> {
  return runInDurableObject(roomStub(room), (instance) => (instance as any).__testMark === true);
}

describe("eviction with hibernated sockets", () => {
  // After eviction: HTTP sends continue the seq and reach the old sockets; a socket's
  // own send carries its identity (id, name, role); a new socket's welcome is right.
  it("a fresh instance continues the seq and knows its sockets' identities", async () => {
    const room = uniqueRoom("hib");
    const aliceToken = await tokenFor("alice", { rooms: ["*"], name: "Alice Liddell", role: "agent" });
    const alice = await TestSocket.open(room, aliceToken);
    const bob = await TestSocket.open(room, await tokenFor("bob", { rooms: ["*"], name: "Bob Builder" }));
    await alice.next((f) => f.type === "welcome");
    await bob.next((f) => f.type === "welcome");
    alice.send({ type: "send", data: { text: "before 1" }, clientId: "a1" });
    await alice.next((f) => f.type === "ack");
    await postJson(`/rooms/${room}/messages`, { data: { text: "before 2" } }, await tokenFor("carol"));
    await bob.untilMessages(2);

    await markInstance(room);
    await evictDurableObject(roomStub(room));

    // Bob's socket wakes the room; the new instance must know it is Bob's.
    bob.send({ type: "send", data: { text: "after eviction" }, clientId: "b1" });
    expect(await bob.next((f) => f.type === "ack")).toMatchObject({ clientId: "b1", seq: 3 });
    expect(await isMarkedInstance(room)).toBe(false); // it really is a fresh instance
    const [, , third] = await alice.untilMessages(3);
    expect(third).toMatchObject({ seq: 3, from: { id: "bob", name: "Bob Builder" }, data: { text: "after eviction" } });

    // Alice's socket still speaks as Alice.
    alice.send({ type: "send", data: { text: "me again" }, clientId: "a2" });
    expect(await alice.next((f) => f.type === "ack")).toMatchObject({ clientId: "a2", seq: 4 });
    const [, , , fourth] = await bob.untilMessages(4);
    expect(fourth).toMatchObject({ seq: 4, from: { id: "alice", name: "Alice Liddell" }, clientId: "a2" });

    // Idempotency survived: a1 is still a1.
    alice.send({ type: "send", data: { text: "before 1" }, clientId: "a1" });
    expect(await alice.next((f) => f.type === "ack")).toMatchObject({ clientId: "a1", seq: 1 });

    // A newcomer's welcome has the right seq and sees the restored sockets as present.
    const dave = await TestSocket.open(room, await tokenFor("dave"));
    const welcome = await dave.next((f) => f.type === "welcome");
    expect(welcome.seq).toBe(4);
    expect(welcome.presence.map((m: any) => m.id).sort()).toEqual(["alice", "bob", "dave"]);
    expect(welcome.presence.find((m: any) => m.id === "alice")).toEqual({ id: "alice", name: "Alice Liddell", connections: 1 });

    // Both old sockets got every message exactly once, in order.
    await notify(room, { event: "marker", data: {} });
    expect(seqsOf(await alice.untilMessages(5))).toEqual(range(1, 5));
    expect(seqsOf(await bob.untilMessages(5))).toEqual(range(1, 5));

    // The role travelled through hibernation too: D1 records it for Alice's post-eviction message.
    await flushRoom(room);
    const rows = await d1Messages(room);
    expect(rows.find((r) => r.seq === 4)).toMatchObject({ from_id: "alice", from_name: "Alice Liddell", from_role: "agent" });
    for (const s of [alice, bob, dave]) s.close();
  });

  // Presence is rebuilt from the sockets: GET presence after eviction lists them.
  it("presence is rebuilt from hibernated sockets", async () => {
    const room = uniqueRoom("hib");
    const token = await tokenFor("alice");
    const sockets = [await TestSocket.open(room, token), await TestSocket.open(room, token), await TestSocket.open(room, await tokenFor("bob"))];
    await Promise.all(sockets.map((s) => s.next((f) => f.type === "welcome")));
    await evictDurableObject(roomStub(room));
    const response = await get(`/rooms/${room}/presence`, token);
    const { members } = (await response.json()) as any;
    expect(members.sort((a: any, b: any) => a.id.localeCompare(b.id))).toEqual([
      { id: "alice", name: "Alice", connections: 2 },
      { id: "bob", name: "Bob", connections: 1 },
    ]);
    expect((await roomStatus(room)).subscribers).toBe(3);
    for (const s of sockets) s.close();
  });

  // The text ping is answered by the runtime even while the object is evicted.
  it("text ping is answered after eviction", async () => {
    const room = uniqueRoom("hib");
    const socket = await TestSocket.open(room, await tokenFor("alice"));
    await socket.next((f) => f.type === "welcome");
    await evictDurableObject(roomStub(room));
    socket.send("ping");
    expect(await socket.next((f) => f === "pong")).toBe("pong");
    socket.close();
  });
});

describe("eviction without sockets", () => {
  // The seq counter comes from storage: no reuse after an eviction, several in a row.
  it("seq continues across repeated evictions", async () => {
    const room = uniqueRoom("hib");
    const token = await tokenFor("alice");
    const seqs: number[] = [];
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 2; i++) {
        const response = await postJson(`/rooms/${room}/messages`, { data: { text: `r${round}-${i}` } }, token);
        seqs.push(((await response.json()) as any).message.seq);
      }
      await evictDurableObject(roomStub(room));
    }
    const n = await notify(room, { event: "after", data: {} });
    seqs.push(((await n.json()) as any).message.seq);
    expect(seqs).toEqual(range(1, 7));
    const history = await get(`/rooms/${room}/messages?after=0`, token);
    expect(seqsOf(((await history.json()) as any).messages)).toEqual(range(1, 7));
  });

  // After eviction the trimmed boundary is also rebuilt: resume still crosses into D1.
  it("a fresh instance still serves history across the D1 boundary", async () => {
    const room = uniqueRoom("hib");
    const token = await tokenFor("alice");
    for (let i = 0; i < 30; i++) await notify(room, { event: "e", data: { i } });
    const status = await flushRoom(room);
    expect(status.trimmedSeq).toBe(10);
    await evictDurableObject(roomStub(room));
    expect(await roomStatus(room)).toMatchObject({ seq: 30, trimmedSeq: 10, outbox: { pending: 0, flushedSeq: 30 } });
    const socket = await TestSocket.open(room, token, "&after=5");
    expect((await socket.next((f) => f.type === "welcome")).seq).toBe(30);
    expect(seqsOf(await socket.untilMessages(25))).toEqual(range(6, 30));
    socket.close();
  });
});

describe("rate limits across eviction", () => {
  const BURST = 20;
  const RATE = 10;

  /** Sends `count` messages at once over HTTP; returns how many were accepted and checks every refusal is a 429. */
  async function burst(room: string, token: string, count: number, prefix: string): Promise<{ accepted: number; elapsedMs: number }> {
    const started = Date.now();
    const responses = await Promise.all(
      Array.from({ length: count }, (_, i) => postJson(`/rooms/${room}/messages`, { data: { text: `${prefix}${i}` }, clientId: `${prefix}${i}` }, token)),
    );
    const statuses = responses.map((r) => r.status);
    expect(statuses.every((s) => s === 201 || s === 429)).toBe(true);
    return { accepted: statuses.filter((s) => s === 201).length, elapsedMs: Date.now() - started };
  }

  // objects/room/rate-limiter.ts keeps buckets in memory on purpose: a room hibernates only after seconds
  // of silence, by which time a bucket is full again. So a fresh instance starting every user with a full
  // bucket gives what the old one would have: a burst of 20, then 429s. Shown here three ways: after an
  // idle wait without eviction, after eviction (HTTP), and over a hibernated socket that wakes the room.
  it("a fresh instance starts every user with a full burst, the same as the old one after the idle time, and still enforces it", async () => {
    const room = uniqueRoom("hib-rate");
    const token = await tokenFor("spammer");
    const within = (result: { accepted: number; elapsedMs: number }) => {
      expect(result.accepted).toBeGreaterThanOrEqual(BURST);
      expect(result.accepted).toBeLessThanOrEqual(BURST + Math.ceil((result.elapsedMs * RATE) / 1000));
    };

    // Right after a burst the bucket is empty: probes are refused, except for what refills meanwhile
    // (at RATE per second; a loaded machine may take a while per request, so that is allowed for).
    const exhausted = async (probe: string) => {
      const started = Date.now();
      // Bounded: on a machine so slow that every request outlasts a refill, no refusal would ever come.
      for (let i = 0; i < 50; i++) {
        const status = (await postJson(`/rooms/${room}/messages`, { data: { text: `${probe}${i}` }, clientId: `${probe}${i}` }, token)).status;
        if (status === 429) return;
        expect(status).toBe(201);
        expect(i + 1, "accepted more than refilled").toBeLessThanOrEqual(Math.ceil(((Date.now() - started) * RATE) / 1000));
      }
    };

    // Exhausted, then idle for burst/rate seconds in the same instance: full again.
    within(await burst(room, token, 30, "a"));
    await exhausted("probe-a");
    await scheduler.wait((BURST / RATE) * 1000 + 100);
    within(await burst(room, token, 30, "b"));
    await exhausted("probe-b");

    // Exhausted, then evicted at once: the new instance gives the same full burst, and limits after it.
    await evictDurableObject(roomStub(room));
    within(await burst(room, token, 30, "d"));
    await exhausted("probe-d");

    // Exhausted on a socket, evicted, then the hibernated socket's own frames wake the room: same rule, same identity.
    const socket = await TestSocket.open(room, token);
    await socket.next((f) => f.type === "welcome");
    await scheduler.wait((BURST / RATE) * 1000 + 100);
    await evictDurableObject(roomStub(room));
    const started = Date.now();
    for (let i = 0; i < 30; i++) socket.send({ type: "send", data: { text: `e${i}` }, clientId: `e${i}` });
    const answers: any[] = [];
    while (answers.length < 30) answers.push(await socket.next((f) => f.type === "ack" || f.type === "error"));
    within({ accepted: answers.filter((f) => f.type === "ack").length, elapsedMs: Date.now() - started });
    for (const refused of answers.filter((f) => f.type === "error")) expect(refused).toMatchObject({ code: "rate_limited", retryAfter: expect.any(Number) });
    const seq = (await roomStatus(room)).seq;
    const mine = (await socket.untilMessages(answers.filter((f) => f.type === "ack").length)).filter((m: any) => m.from.id === "spammer");
    expect(mine.every((m: any) => m.from.name === "Spammer")).toBe(true);
    const history = (await (await get(`/rooms/${room}/messages?after=0&limit=1000`, token)).json()) as any;
    expect(seqsOf(history.messages)).toEqual(range(1, seq));
    socket.close();
  });
});
