/**
 * Webhooks inside workerd (real Durable Objects, real D1), delivered to a
 * local receiver that verifies every call with the `pusher` SDK's
 * `webhook()` (test/e2e/webhook-receiver.ts, started by this project's
 * global setup). This project sets WEBHOOK_URLS to two receivers (`/hooks`
 * and `/hooks/second` of that server), every event kind, a 20 ms batch
 * delay, 50 ms first retry, and WEBHOOK_MAX_PENDING 50.
 * The same flows with real clients against wrangler dev: test/e2e/webhooks.test.ts.
 */
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { ChatRoom } from "../../../objects/ChatRoom";
import { WebhookQueue } from "../../../objects/room/webhook-queue";
import type { Env } from "../../../server/env";
import { webhookConfigFrom } from "../../../server/webhooks/config";
import { call, notify, openSse, tokenFor, TestSocket } from "../helpers";
import { eventually, get, roomStub, uniqueRoom } from "../support";

const RECEIVER = new URL(env.WEBHOOK_URLS!.split(",")[0]!).origin;

interface Received {
  invalid: number;
  calls: { path: string; status: number; events: any[]; timeMs: number; headers: Record<string, string> }[];
}

/** What the first receiver (`/hooks`) got for `room`, or the one at `path`. */
async function received(room: string, path = "/hooks"): Promise<Received> {
  const all: Received = await (await fetch(`${RECEIVER}/received?channel=${encodeURIComponent(room)}`)).json();
  return { invalid: all.invalid, calls: all.calls.filter((call) => call.path === path) };
}

/** Events of `room` answered 200, in arrival order (a retried batch appears once per accepted call). */
const accepted = (r: Received) => r.calls.filter((c) => c.status === 200).flatMap((c) => c.events);

/** Polls the receiver (out of this process) until `done`; bounded. */
async function until(room: string, done: (r: Received) => boolean, what: string, path?: string): Promise<Received> {
  let r!: Received;
  await eventually(async () => {
    r = await received(room, path);
    expect(r.invalid).toBe(0);
    return done(r);
  }, what);
  return r;
}

async function script(room: string, plan: { path?: string; statuses?: number[]; status?: number; delayMs?: number }): Promise<void> {
  expect((await fetch(`${RECEIVER}/script`, { method: "POST", body: JSON.stringify({ channel: room, ...plan }) })).status).toBe(204);
}

async function webhookStatus(room: string): Promise<any> {
  const response = await get(`/rooms/${encodeURIComponent(room)}/status`, env.NOTIFY_SECRET);
  return ((await response.json()) as any).webhooks;
}

const names = (events: any[]) => events.map((e) => e.name);

/** The first receiver's attempts in D1's webhook_logs, once `done` holds (the room's alarm writes them). */
async function logRows(room: string, done: (rows: any[]) => boolean): Promise<any[]> {
  let rows: any[] = [];
  await eventually(async () => {
    await runDurableObjectAlarm(roomStub(room));
    rows = (await env.DB.prepare(
      "SELECT status, http_status, attempt, first_event FROM webhook_logs WHERE room = ? AND url LIKE '%/hooks' ORDER BY created_at, attempt",
    ).bind(room).all()).results;
    return done(rows);
  }, `${room}: webhook_logs to get the rows expected`);
  return rows;
}

describe("webhooks", () => {
  it("queues an accepted message in the step that accepts it, then posts it in Pusher's signed format", async () => {
    const room = uniqueRoom("wh-msg");
    const queued = await runInDurableObject(roomStub(room), async (instance: ChatRoom, state) => {
      const result = await instance.send({ room, user: { id: "ann", name: "Ann" } }, { data: { text: "hi" } });
      // No await between accepting and looking: the row is written in the same step.
      return { ok: result.ok, rows: state.storage.sql.exec<{ json: string }>("SELECT json FROM webhook_events").toArray().map((r) => JSON.parse(r.json)) };
    });
    expect(queued.ok).toBe(true);
    expect(queued.rows).toEqual([{ id: expect.any(String), name: "message", channel: room, seq: 1, event: "message", data: { text: "hi" }, user_id: "ann" }]);

    const r = await until(room, (r) => accepted(r).length === 1, "the message webhook");
    const call = r.calls[0]!;
    expect(call.headers["content-type"]).toBe("application/json");
    expect(call.headers["x-pusher-key"]).toBe(env.PUSHER_KEY);
    expect(call.headers["x-pusher-signature"]).toMatch(/^[0-9a-f]{64}$/);
    expect(Math.abs(call.timeMs - Date.now())).toBeLessThan(60_000);
    expect(call.events).toEqual([{ ...queued.rows[0] }]);
    // Delivered everywhere: the room forgets it, and D1 has the attempt.
    await runDurableObjectAlarm(roomStub(room));
    const status = await webhookStatus(room);
    expect(status).toMatchObject({ enabled: true, pending: 0, dropped: 0 });
    expect(status.configError).toBeUndefined();
  });

  it("announces occupied, member_added, member_removed and vacated for a WebSocket, once each", async () => {
    const room = uniqueRoom("wh-occ");
    const socket = await TestSocket.open(room, await tokenFor("bea", { rooms: ["*"], name: "Bea" }));
    await socket.next((f) => f.type === "welcome");
    await until(room, (r) => accepted(r).length === 2, "occupied and member_added");
    // A second connection of the same user announces nothing.
    const again = await TestSocket.open(room, await tokenFor("bea", { rooms: ["*"], name: "Bea" }));
    await again.next((f) => f.type === "welcome");
    again.close();
    socket.close();
    const r = await until(room, (r) => accepted(r).length >= 4, "member_removed and vacated");
    const events = accepted(r);
    expect(names(events)).toEqual(["channel_occupied", "member_added", "channel_vacated", "member_removed"]);
    expect(events[1]).toMatchObject({ channel: room, user_id: "bea" });
    expect(events[3]).toMatchObject({ channel: room, user_id: "bea" });
    expect(new Set(events.map((e) => e.id)).size).toBe(4);
  });

  it("stays occupied across eviction with a hibernated socket, and vacates once when it closes", async () => {
    const room = uniqueRoom("wh-hib");
    const socket = await TestSocket.open(room, await tokenFor("cy", { rooms: ["*"] }));
    await socket.next((f) => f.type === "welcome");
    await until(room, (r) => accepted(r).length === 2, "occupied and member_added");

    await evictDurableObject(roomStub(room));
    // The socket wakes a fresh instance: no second occupied, no second member_added.
    socket.send({ type: "send", data: { text: "after eviction" }, clientId: "c1" });
    await socket.next((f) => f.type === "ack");
    await until(room, (r) => names(accepted(r)).includes("message"), "the message");

    await evictDurableObject(roomStub(room));
    socket.close();
    const r = await until(room, (r) => names(accepted(r)).includes("member_removed"), "member_removed");
    expect(names(accepted(r))).toEqual(["channel_occupied", "member_added", "message", "channel_vacated", "member_removed"]);
  });

  it("removes a member exactly once when the room is evicted during the presence grace", async () => {
    const room = uniqueRoom("wh-grace");
    const socket = await TestSocket.open(room, await tokenFor("gus", { rooms: ["*"] }));
    await socket.next((f) => f.type === "welcome");
    await until(room, (r) => accepted(r).length === 2, "occupied and member_added");
    socket.close();
    // As soon as the room has seen the close (gus is then within the 200 ms grace), evict it: the presence
    // timer dies with the instance, and the alarm armed at vacating brings a fresh one to remove gus.
    await eventually(() => runInDurableObject(roomStub(room), (instance: ChatRoom) => (instance as any).hub.size === 0), "the room to see the close");
    await evictDurableObject(roomStub(room));
    await until(room, (r) => names(accepted(r)).includes("member_removed"), "member_removed after eviction");
    expect((await notify(room, { event: "later", data: {} })).status).toBe(202);
    const r = await until(room, (r) => names(accepted(r)).includes("message"), "the later message");
    expect(names(accepted(r))).toEqual(["channel_occupied", "member_added", "channel_vacated", "member_removed", "message"]);
  });

  it("counts SSE streams and long-polls: a poller keeps the room occupied through its presence window", async () => {
    const room = uniqueRoom("wh-sse");
    const stream = await openSse(room, await tokenFor("sid"));
    await stream.until("retry:");
    await until(room, (r) => accepted(r).length === 2, "occupied and member_added for the stream");
    // A quick poll: its user is present (and the room occupied) for 30 s after it answers.
    expect((await call(`/rooms/${room}/messages?after=0`, { headers: { authorization: `Bearer ${await tokenFor("lou")}` } })).status).toBe(200);
    await stream.close();
    const r = await until(room, (r) => names(accepted(r)).includes("member_removed"), "the stream's member_removed");
    // The stream left, the poller's window is open: no channel_vacated.
    expect(accepted(r).map((e) => [e.name, e.user_id])).toEqual([
      ["channel_occupied", undefined],
      ["member_added", "sid"],
      ["member_added", "lou"],
      ["member_removed", "sid"],
    ]);
  });

  it("retries with the same event ids, in order, and logs every attempt in D1", async () => {
    const room = uniqueRoom("wh-retry");
    await script(room, { path: "/hooks", statuses: [500, 503] });
    for (const n of [1, 2, 3]) expect((await notify(room, { event: "tick", data: { n } })).status).toBe(202);
    const r = await until(room, (r) => accepted(r).length === 3, "three messages after two failures");
    const first = r.calls[0]!.events.map((e) => e.id);
    expect(r.calls.slice(0, 3).map((c) => c.status)).toEqual([500, 503, 200]);
    // Every attempt starts from the same first event: the receiver can drop duplicates by id.
    expect(r.calls.slice(0, 3).map((c) => c.events[0].id)).toEqual([first[0], first[0], first[0]]);
    expect(accepted(r).map((e) => e.seq)).toEqual([1, 2, 3]);

    // Logged: the rows reach D1 on the alarm after the attempts.
    const logs = await logRows(room, (rows) => rows.length >= 3);
    expect(logs.slice(0, 3).map((l) => [l.status, l.http_status, l.attempt])).toEqual([["retry", 500, 1], ["retry", 503, 2], ["sent", 200, 3]]);
    expect(new Set(logs.slice(0, 3).map((l) => l.first_event))).toEqual(new Set([first[0]]));
  });

  it("does not retry a batch answered with a 4xx: it is dropped, counted and logged, and the next one goes", async () => {
    const room = uniqueRoom("wh-400");
    await script(room, { path: "/hooks", statuses: [400] });
    expect((await notify(room, { event: "refused", data: {} })).status).toBe(202);
    await until(room, (r) => r.calls.length === 1, "the refused call");
    expect((await notify(room, { event: "accepted", data: {} })).status).toBe(202);
    const r = await until(room, (r) => accepted(r).length === 1, "the next event");
    expect(r.calls.map((c) => [c.status, c.events.map((e) => e.event)])).toEqual([[400, ["refused"]], [200, ["accepted"]]]);
    const status = await webhookStatus(room);
    expect(status.targets[0]).toMatchObject({ pending: 0, dropped: 1 });
    expect(status.targets[0].lastError).toBeUndefined(); // cleared by the success that followed
    const logs = await logRows(room, (rows) => rows.length >= 2);
    expect(logs.map((l) => [l.status, l.http_status])).toEqual([["failed", 400], ["sent", 200]]);
  });

  it("gives up on a receiver failing for longer than the retry period: what it lacks is dropped, counted and logged", async () => {
    const room = uniqueRoom("wh-giveup");
    await script(room, { path: "/hooks", status: 503 });
    for (const n of [1, 2, 3]) expect((await notify(room, { event: "tick", data: { n } })).status).toBe(202);
    await until(room, (r) => r.calls.length >= 2, "two failed attempts");
    // An hour of failures, without waiting an hour: the first failure moves back in time, the retry is due.
    await runInDurableObject(roomStub(room), (_, state) => {
      state.storage.sql.exec("UPDATE webhook_targets SET failing_since = failing_since - 2 * 3600 * 1000, next_at = 0 WHERE url LIKE '%/hooks'");
    });
    await runDurableObjectAlarm(roomStub(room));
    let status: any;
    await eventually(async () => (status = await webhookStatus(room)).targets[0].dropped > 0, "the target's events to be dropped");
    expect(status.targets[0]).toMatchObject({ pending: 0, attempts: 0, dropped: 3 });
    expect(status.targets[0].lastError).toMatch(/gave up after \d+ attempts/);
    const logs = await logRows(room, (rows) => rows.some((row) => row.status === "dropped"));
    expect(logs.at(-1)).toMatchObject({ status: "dropped", http_status: 503 });
    expect(logs.slice(0, -1).every((l) => l.status === "retry")).toBe(true);
  });

  it("keeps at most WEBHOOK_MAX_PENDING events for a dead receiver, counting the dropped ones", async () => {
    const room = uniqueRoom("wh-cap");
    await script(room, { status: 503 });
    for (let n = 1; n <= 60; n++) expect((await notify(room, { event: "tick", data: { n } })).status).toBe(202);
    const status = await webhookStatus(room);
    // Counted for each of the two receivers.
    expect(status).toMatchObject({ pending: 50, maxPending: 50, dropped: 20 });
    expect(status.targets).toEqual([expect.objectContaining({ pending: 50, dropped: 10 }), expect.objectContaining({ pending: 50, dropped: 10 })]);
    // The receiver is still called (and failing); the dropped events are not in its retries.
    const r = await until(room, (r) => r.calls.some((c) => c.events[0].seq > 10), "a retry without the dropped events");
    expect(r.calls.every((c) => c.status === 503)).toBe(true);
    expect(r.calls.at(-1)!.events[0].seq).toBe(11);
  });

  it("gives every URL every event at its own pace: one receiver failing does not hold back the other", async () => {
    const room = uniqueRoom("wh-two");
    await script(room, { path: "/hooks/second", status: 503 });
    for (const n of [1, 2, 3]) expect((await notify(room, { event: "tick", data: { n } })).status).toBe(202);
    await until(room, (r) => accepted(r).length === 3, "all three at the first receiver");
    const failing = await until(room, (r) => r.calls.length >= 2, "two failed calls at the second", "/hooks/second");
    expect(failing.calls.every((c) => c.status === 503)).toBe(true);
    const status = await webhookStatus(room);
    expect(status.pending).toBe(3); // kept until the second has them
    expect(status.targets.map((t: any) => [t.url.replace(/^.*\/hooks/, "/hooks"), t.pending])).toEqual([["/hooks", 0], ["/hooks/second", 3]]);
    expect(status.targets[1].lastError).toMatch(/503/);

    await script(room, { path: "/hooks/second" }); // it recovers
    const second = await until(room, (r) => accepted(r).length === 3, "all three at the second receiver", "/hooks/second");
    expect(accepted(second).map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(accepted(second).map((e) => e.id)).toEqual(accepted(await received(room)).map((e) => e.id));
  });

  it("sends client_event with socket_id and user_id, and cache_miss when asked", async () => {
    const room = uniqueRoom("presence-wh");
    await runInDurableObject(roomStub(room), async (instance: ChatRoom) => {
      await instance.pusherClientEvent(room, "123.456", JSON.stringify({ event: "client-typing", channel: room, data: { who: "dee" }, user_id: "dee" }));
      (instance as any).webhooks.cacheMiss(room);
    });
    const r = await until(room, (r) => accepted(r).length === 2, "client_event and cache_miss");
    expect(accepted(r)).toEqual([
      { id: expect.any(String), name: "client_event", channel: room, event: "client-typing", data: '{"who":"dee"}', socket_id: "123.456", user_id: "dee" },
      { id: expect.any(String), name: "cache_miss", channel: room },
    ]);
  });
});

describe("webhook configuration", () => {
  const base = { PUSHER_KEY: "k", PUSHER_SECRET: "s", WEBHOOK_URLS: "https://hooks.example.com/pusher?token=abc" } as unknown as Env;

  it("defaults to every event but message, and reports what cannot work instead of dropping silently", () => {
    expect([...webhookConfigFrom({ ...base }).events].sort()).toEqual(["cache_miss", "channel_occupied", "channel_vacated", "client_event", "member_added", "member_removed"]);
    expect(webhookConfigFrom({ ...base }).problem).toBeUndefined();
    expect(webhookConfigFrom({ ...base, PUSHER_SECRET: undefined }).problem).toMatch(/PUSHER_SECRET is not/);
    expect(webhookConfigFrom({ ...base, WEBHOOK_URLS: "http://10.0.0.1/hook" }).problem).toMatch(/must be an https URL/);
    expect(webhookConfigFrom({ ...base, WEBHOOK_URLS: "https://localhost/hook" }).problem).toMatch(/public host/);
    expect(webhookConfigFrom({ ...base, WEBHOOK_EVENTS: "message,nonsense" }).problem).toMatch(/unknown nonsense/);
    expect([...webhookConfigFrom({ ...base, WEBHOOK_EVENTS: "message" }).events]).toEqual(["message"]);
  });

  it("a room without the secret keeps its events and says why in its status", async () => {
    const room = uniqueRoom("wh-misconfigured");
    const status = await runInDurableObject(roomStub(room), async (_instance: ChatRoom, state) => {
      const queue = new WebhookQueue(state.storage, { ...env, PUSHER_SECRET: undefined } as Env, () => room);
      state.storage.sql.exec("DELETE FROM webhook_events"); // only what this queue is given
      queue.enqueue({ name: "channel_occupied", channel: room });
      await queue.run();
      return queue.status();
    });
    expect(status.configError).toMatch(/PUSHER_SECRET is not/);
    expect(status.pending).toBe(1);
  });
});
