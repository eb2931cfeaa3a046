/**
 * Issue 9 §2, a sustained D1 outage with a bounded outbox. While D1 fails,
 * the room keeps accepting events (they are durable in its own storage) and
 * keeps serving history from it; the backlog shows in GET …/status and in the
 * log. Once OUTBOX_MAX_PENDING events wait for D1, new events are refused
 * with 503 `unavailable` and a Retry-After, on every way in, and nothing is
 * stored for them; retries of events already accepted are still answered.
 * When D1 returns, the backlog drains, every event is in D1 exactly once,
 * and sends are accepted again. (outbox.test.ts covers the flush itself:
 * lost replies, re-flushes, eviction, in-flight flushes.)
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ChatRoom } from "../../objects/ChatRoom";
import { configFrom } from "../../server/config";
import { notify, postJson, tokenFor, TestSocket } from "./helpers";
import { d1Messages, expectError, flushRoom, get, range, roomStatus, roomStub, seqsOf, uniqueRoom } from "./support";

const CAP = 12;

/** This room's instance: its D1 writes fail (D1 down) and its outbox holds at most `cap` events. */
function outage(room: string, cap: number): Promise<void> {
  return runInDurableObject(roomStub(room), (instance: ChatRoom) => {
    const outbox = (instance as any).outbox;
    outbox.config = { ...outbox.config, outboxMaxPending: cap };
    const store = outbox.d1;
    store.realDb ??= store.db;
    const real: D1Database = store.realDb;
    store.db = {
      prepare: (sql: string) => real.prepare(sql),
      batch: async () => {
        throw new Error("D1 unavailable (injected)");
      },
    };
  });
}

function d1Back(room: string): Promise<void> {
  return runInDurableObject(roomStub(room), (instance: ChatRoom) => {
    const store = (instance as any).outbox.d1;
    store.db = store.realDb;
  });
}

/** Every line the room logged through console.error / console.info since the spy was set. */
function logLines(...spies: { mock: { calls: unknown[][] } }[]): string[] {
  return spies.flatMap((spy) => spy.mock.calls.map((args) => args.map(String).join(" ")));
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("a sustained D1 outage", () => {
  it("accepts and serves events up to OUTBOX_MAX_PENDING, then refuses new ones with 503 unavailable; nothing lost or doubled when D1 returns", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const infos = vi.spyOn(console, "info").mockImplementation(() => {});
    const room = uniqueRoom("outage");
    const alice = await tokenFor("alice");
    await outage(room, CAP);

    // 1. Sends keep being accepted while D1 is down: HTTP, WebSocket and notify.
    const bob = await TestSocket.open(room, await tokenFor("bob"));
    await bob.next((f) => f.type === "welcome");
    const sent: any[] = [];
    for (let i = 1; i <= CAP; i++) {
      if (i % 3 === 0) {
        const response = await notify(room, { event: "system", data: { i }, idempotencyKey: `k${i}` });
        expect(response.status).toBe(202);
        sent.push(((await response.json()) as any).message);
      } else if (i % 3 === 1) {
        const response = await postJson(`/rooms/${room}/messages`, { data: { text: `a${i}` }, clientId: `a${i}` }, alice);
        expect(response.status).toBe(201);
        sent.push(((await response.json()) as any).message);
      } else {
        bob.send({ type: "send", data: { text: `b${i}` }, clientId: `b${i}` });
        expect(await bob.next((f) => f.type === "ack" || f.type === "error")).toMatchObject({ type: "ack", clientId: `b${i}`, seq: i });
        sent.push((await bob.untilMessages(i))[i - 1]);
      }
    }
    expect(seqsOf(sent)).toEqual(range(1, CAP));

    // The flushes fail and are retried; the backlog is visible in the status route and in the log.
    for (let i = 0; i < 3; i++) await runDurableObjectAlarm(roomStub(room));
    let status = await roomStatus(room);
    expect(status).toMatchObject({ seq: CAP, trimmedSeq: 0, outbox: { pending: CAP, flushedSeq: 0, maxPending: CAP, full: true } });
    expect(status.outbox.consecutiveFailures).toBeGreaterThanOrEqual(3);
    expect(status.outbox.lastError).toContain("injected");
    expect(logLines(errors).filter((l) => l.includes("D1 flush failed")).length).toBeGreaterThanOrEqual(3);
    expect(logLines(errors).filter((l) => l.includes("D1 flush failed")).at(-1)).toMatch(
      new RegExp(`^room ${room}: D1 flush failed \\(\\d+ in a row, ${CAP} events waiting\\), retrying in \\d+ ms: D1 unavailable \\(injected\\)$`),
    );

    // 2. History stays readable from the object: a page, and a WebSocket resume from 0.
    const page = (await (await get(`/rooms/${room}/messages?after=0`, alice)).json()) as any;
    expect(page.messages).toEqual(sent);
    const reader = await TestSocket.open(room, alice, "&after=0");
    expect(await reader.untilMessages(CAP)).toEqual(sent);

    // 3. Full: every way in refuses a new event with 503 unavailable and a Retry-After.
    const refusedSend = await postJson(`/rooms/${room}/messages`, { data: { text: "one too many" }, clientId: "late-1" }, alice);
    const retryAfter = Number(refusedSend.headers.get("retry-after"));
    expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60).toBe(true);
    expect(await expectError(refusedSend, 503, "unavailable")).toContain("retry in");
    const refusedNotify = await notify(room, { event: "system", data: {}, idempotencyKey: "late-k" });
    expect(refusedNotify.headers.get("retry-after")).toMatch(/^\d+$/);
    await expectError(refusedNotify, 503, "unavailable");
    await expectError(await postJson("/notify", { rooms: [room], event: "system", data: {} }, env.NOTIFY_SECRET), 503, "unavailable");
    bob.send({ type: "send", data: { text: "late over ws" }, clientId: "late-ws" });
    const frame = await bob.next((f) => f.type === "error" || f.type === "ack");
    expect(frame).toMatchObject({ type: "error", code: "unavailable", clientId: "late-ws" });
    expect(frame.retryAfter).toBeGreaterThanOrEqual(1);
    // The legacy API's session N is the room chat-session:N, with the same cap (1 here).
    const session = 1 + Math.floor(Math.random() * 1e9);
    const legacyRoom = `chat-session:${session}`;
    await outage(legacyRoom, 1);
    expect((await postJson("/api/chat/message", { chat_session_id: session, message: "first" }, alice)).status).toBe(200);
    const legacy = await postJson("/api/chat/message", { chat_session_id: session, message: "second" }, alice);
    expect(legacy.status).toBe(503);
    expect(((await legacy.json()) as any)).toMatchObject({ success: false, error: { code: "unavailable" } });

    // Retries of events already accepted are answered with the original, full or not.
    const replay = await postJson(`/rooms/${room}/messages`, { data: { text: "a1" }, clientId: "a1" }, alice);
    expect(replay.status).toBe(200);
    expect(((await replay.json()) as any).message).toEqual(sent[0]);
    const replayNotify = await notify(room, { event: "system", data: {}, idempotencyKey: "k3" });
    expect(replayNotify.status).toBe(200);
    bob.send({ type: "send", data: { text: "b2" }, clientId: "b2" });
    expect(await bob.next((f) => f.type === "ack" || f.type === "error")).toMatchObject({ type: "ack", clientId: "b2", seq: 2 });

    // Signals that store no event still work.
    expect((await postJson(`/rooms/${room}/read`, { seq: CAP }, alice)).status).toBe(204);
    expect((await postJson(`/rooms/${room}/typing`, {}, alice)).status).toBe(204);

    // Nothing was stored or broadcast for the refused events; the full state was logged once.
    status = await roomStatus(room);
    expect(status).toMatchObject({ seq: CAP, outbox: { pending: CAP, full: true } });
    expect(seqsOf(reader.messages())).toEqual(range(1, CAP));
    expect(logLines(errors).filter((l) => l.includes(`room ${room}: D1 outbox full`))).toEqual([
      `room ${room}: D1 outbox full (${CAP} events waiting, OUTBOX_MAX_PENDING ${CAP}): refusing new events until D1 catches up`,
    ]);

    // 4. D1 is back: the backlog drains, once each, and sends are accepted again (a refused clientId too).
    await d1Back(room);
    status = await flushRoom(room);
    expect(status).toMatchObject({ seq: CAP, outbox: { pending: 0, flushedSeq: CAP, consecutiveFailures: 0, full: false } });
    expect(logLines(infos).filter((l) => l.includes(`room ${room}: D1 outbox has room again`)).length).toBe(1);
    const rows = await d1Messages(room);
    expect(rows.map((r) => r.seq)).toEqual(range(1, CAP));
    expect(rows.map((r) => JSON.parse(r.envelope))).toEqual(sent);
    const accepted = await postJson(`/rooms/${room}/messages`, { data: { text: "one too many" }, clientId: "late-1" }, alice);
    expect(accepted.status).toBe(201);
    expect(((await accepted.json()) as any).message.seq).toBe(CAP + 1);
    bob.send({ type: "send", data: { text: "late over ws" }, clientId: "late-ws" });
    expect(await bob.next((f) => f.type === "ack")).toMatchObject({ clientId: "late-ws", seq: CAP + 2 });
    expect(seqsOf(await reader.untilMessages(CAP + 2))).toEqual(range(1, CAP + 2));
    for (const socket of [bob, reader]) socket.close();
    await d1Back(legacyRoom);
  });

  it("OUTBOX_MAX_PENDING: 100,000 by default, overridable, 0 for no cap", () => {
    expect(configFrom({} as any).outboxMaxPending).toBe(100_000);
    expect(configFrom({ OUTBOX_MAX_PENDING: "250" } as any).outboxMaxPending).toBe(250);
    expect(configFrom({ OUTBOX_MAX_PENDING: "0" } as any).outboxMaxPending).toBe(0);
    expect(() => configFrom({ OUTBOX_MAX_PENDING: "lots" } as any)).toThrow(/OUTBOX_MAX_PENDING/);
  });

  it("with OUTBOX_MAX_PENDING 0 a long outage never refuses a send", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const room = uniqueRoom("outage");
    await outage(room, 0);
    const responses = await Promise.all(Array.from({ length: 40 }, (_, i) => notify(room, { event: "e", data: { i } })));
    expect(responses.map((r) => r.status)).toEqual(Array(40).fill(202));
    await runDurableObjectAlarm(roomStub(room));
    expect((await roomStatus(room)).outbox).toMatchObject({ pending: 40, maxPending: 0, full: false });
    await d1Back(room);
    expect((await flushRoom(room)).outbox.pending).toBe(0);
  });
});
