/**
 * SPEC §4/§5: retrying a send with the same clientId (same user) or a notify
 * with the same idempotencyKey returns the original envelope, uses no new
 * seq and broadcasts nothing a second time, on every transport.
 */
import { evictDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { notify, postJson, tokenFor, TestSocket } from "./helpers";
import { flushRoom, roomStatus, roomStub, seedEvents, seqsOf, uniqueRoom } from "./support";

/** Opens an observer socket and waits for its welcome. */
async function observe(room: string): Promise<TestSocket> {
  const socket = await TestSocket.open(room, await tokenFor("observer"));
  await socket.next((f) => f.type === "welcome");
  return socket;
}

/** Publishes a marker and returns every message the socket got before it. */
async function messagesBeforeMarker(room: string, socket: TestSocket): Promise<any[]> {
  const marker = await notify(room, { event: "marker", data: {} });
  const markerSeq = ((await marker.json()) as any).message.seq;
  let messages = socket.messages();
  while (!messages.some((m) => m.seq === markerSeq)) messages = await socket.untilMessages(messages.length + 1);
  return messages.filter((m) => m.event !== "marker");
}

describe("send over HTTP", () => {
  // 201 then 200 with the identical envelope (same seq, id, ts), broadcast once.
  it("same clientId, same user → 201 then 200 with the original envelope", async () => {
    const room = uniqueRoom("idem");
    const watcher = await observe(room);
    const alice = await tokenFor("alice");
    const first = await postJson(`/rooms/${room}/messages`, { data: { text: "hello" }, clientId: "c-1" }, alice);
    expect(first.status).toBe(201);
    const original = ((await first.json()) as any).message;
    for (const body of [{ data: { text: "hello" }, clientId: "c-1" }, { data: { text: "edited on retry" }, clientId: "c-1" }]) {
      const retry = await postJson(`/rooms/${room}/messages`, body, alice);
      expect(retry.status).toBe(200);
      expect(((await retry.json()) as any).message).toEqual(original);
    }
    expect(await messagesBeforeMarker(room, watcher)).toEqual([original]);
    const next = await postJson(`/rooms/${room}/messages`, { data: { text: "next" }, clientId: "c-2" }, alice);
    expect(((await next.json()) as any).message.seq).toBe(3); // 1 = hello, 2 = marker
    watcher.close();
  });

  // Concurrent duplicates (a client that retries before the first answer) still make one message.
  it("concurrent retries of one clientId make one message", async () => {
    const room = uniqueRoom("idem");
    const alice = await tokenFor("alice");
    const responses = await Promise.all(Array.from({ length: 5 }, () => postJson(`/rooms/${room}/messages`, { data: { text: "once" }, clientId: "dup" }, alice)));
    expect(responses.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 201]);
    const envelopes = await Promise.all(responses.map(async (r) => ((await r.json()) as any).message));
    for (const e of envelopes) expect(e).toEqual(envelopes[0]);
    expect((await roomStatus(room)).seq).toBe(1);
  });

  // clientIds are scoped per user: bob's "c-1" is not alice's "c-1".
  it("same clientId from a different user is a new message", async () => {
    const room = uniqueRoom("idem");
    const a = await postJson(`/rooms/${room}/messages`, { data: { text: "from alice" }, clientId: "c-1" }, await tokenFor("alice"));
    const b = await postJson(`/rooms/${room}/messages`, { data: { text: "from bob" }, clientId: "c-1" }, await tokenFor("bob"));
    expect([a.status, b.status]).toEqual([201, 201]);
    const [ma, mb] = [((await a.json()) as any).message, ((await b.json()) as any).message];
    expect([ma.seq, mb.seq]).toEqual([1, 2]);
    expect(mb).toMatchObject({ from: { id: "bob" }, data: { text: "from bob" }, clientId: "c-1" });
  });

  // The window outlives the tail: a retry after the original was flushed and trimmed still matches.
  it("a retry after the original left the object's tail is still recognised", async () => {
    const room = uniqueRoom("idem");
    const alice = await tokenFor("alice");
    const first = await postJson(`/rooms/${room}/messages`, { data: { text: "old" }, clientId: "early" }, alice);
    const original = ((await first.json()) as any).message;
    await seedEvents(room, 30);
    expect((await flushRoom(room)).trimmedSeq).toBeGreaterThanOrEqual(1);
    const retry = await postJson(`/rooms/${room}/messages`, { data: { text: "old" }, clientId: "early" }, alice);
    expect(retry.status).toBe(200);
    expect(((await retry.json()) as any).message).toEqual(original);
    expect((await roomStatus(room)).seq).toBe(31);
  });

  // The window outlives the instance: idempotency keys are in the object's storage.
  it("a retry after the object was evicted is still recognised", async () => {
    const room = uniqueRoom("idem");
    const alice = await tokenFor("alice");
    const first = await postJson(`/rooms/${room}/messages`, { data: { text: "x" }, clientId: "k" }, alice);
    const original = ((await first.json()) as any).message;
    await evictDurableObject(roomStub(room));
    const retry = await postJson(`/rooms/${room}/messages`, { data: { text: "x" }, clientId: "k" }, alice);
    expect(retry.status).toBe(200);
    expect(((await retry.json()) as any).message).toEqual(original);
  });
});

describe("send over WebSocket", () => {
  // A resent frame gets an ack with the original seq and id, and nobody sees the message twice.
  it("same clientId → ack with the original seq, no second broadcast", async () => {
    const room = uniqueRoom("idem-ws");
    const watcher = await observe(room);
    const sender = await TestSocket.open(room, await tokenFor("alice"));
    await sender.next((f) => f.type === "welcome");
    sender.send({ type: "send", data: { text: "hi" }, clientId: "w-1" });
    const firstAck = await sender.next((f) => f.type === "ack");
    sender.send({ type: "send", data: { text: "hi" }, clientId: "w-1" });
    const secondAck = await sender.next((f) => f.type === "ack");
    expect(secondAck).toEqual(firstAck);
    expect(firstAck).toMatchObject({ clientId: "w-1", seq: 1 });
    const seen = await messagesBeforeMarker(room, watcher);
    expect(seqsOf(seen)).toEqual([1]);
    // The sender's copy of the marker leaves in the same fan-out, but may arrive a moment after the watcher's.
    expect(seqsOf(await sender.untilMessages(2))).toEqual([1, 2]); // its message once, then the marker
    watcher.close();
    sender.close();
  });

  // One clientId space per user across transports: a WebSocket send retried over HTTP is recognised.
  it("a WebSocket send retried over HTTP returns the original", async () => {
    const room = uniqueRoom("idem-ws");
    const aliceToken = await tokenFor("alice");
    const socket = await TestSocket.open(room, aliceToken);
    await socket.next((f) => f.type === "welcome");
    socket.send({ type: "send", data: { text: "via ws" }, clientId: "x-1" });
    const ack = await socket.next((f) => f.type === "ack");
    const retry = await postJson(`/rooms/${room}/messages`, { data: { text: "via ws" }, clientId: "x-1" }, aliceToken);
    expect(retry.status).toBe(200);
    expect(((await retry.json()) as any).message).toMatchObject({ seq: ack.seq, id: ack.id });
    socket.close();
  });
});

describe("notify", () => {
  // idempotencyKey: 202 then 200 with the original envelope, broadcast once.
  it("same idempotencyKey → 202 then 200, no second broadcast", async () => {
    const room = uniqueRoom("idem-notify");
    const watcher = await observe(room);
    const body = { event: "ticket_assigned", data: { ticket: 1 }, idempotencyKey: "ticket-1-assigned" };
    const first = await notify(room, body);
    expect(first.status).toBe(202);
    const original = ((await first.json()) as any).message;
    const retry = await notify(room, body);
    expect(retry.status).toBe(200);
    expect(((await retry.json()) as any).message).toEqual(original);
    expect(await messagesBeforeMarker(room, watcher)).toEqual([original]);
    // Without a key, or with another key, each notify is a new event.
    const other = await notify(room, { ...body, idempotencyKey: "ticket-1-reassigned" });
    expect(other.status).toBe(202);
    watcher.close();
  });

  // A notify key and a user's clientId with the same text never collide.
  it("notify keys and clientIds are separate spaces", async () => {
    const room = uniqueRoom("idem-notify");
    await notify(room, { event: "e", data: {}, idempotencyKey: "same" });
    const send = await postJson(`/rooms/${room}/messages`, { data: { text: "x" }, clientId: "same" }, await tokenFor("alice"));
    expect(send.status).toBe(201);
  });

  // Batch notify with a key: retried, every room answers its original envelope and nothing new is published.
  it("batch notify with an idempotencyKey is idempotent per room", async () => {
    const rooms = [uniqueRoom("idem-batch"), uniqueRoom("idem-batch")];
    const body = { rooms, event: "broadcast", data: { v: 1 }, idempotencyKey: "b-1" };
    const first = await postJson("/notify", body, env.NOTIFY_SECRET);
    expect(first.status).toBe(202);
    const retry = await postJson("/notify", body, env.NOTIFY_SECRET);
    expect(retry.status).toBe(200);
    expect(await retry.json()).toEqual(await first.json());
    for (const room of rooms) expect((await roomStatus(room)).seq).toBe(1);
  });
});
