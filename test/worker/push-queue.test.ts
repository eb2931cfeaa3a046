/**
 * The room's push queue inside workerd (real Durable Object, real D1): the
 * send path only records the event; the alarm expands it into jobs and
 * attempts them; attempts are counted durably (an evicted room picks up
 * where it was), stop at 3, and each one lands in D1's push_logs. The
 * endpoint is a public name that cannot resolve (`.invalid`), so every
 * attempt is a network error. Delivery to a real push service:
 * test/e2e/push.test.ts.
 */
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { ChatRoom } from "../../objects/ChatRoom";
import { postJson, tokenFor } from "./helpers";
import { eventually, roomStub, uniqueRoom } from "./support";

const b64url = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

async function subscribe(user: string, endpoint: string): Promise<void> {
  const pair = (await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"])) as CryptoKeyPair;
  const p256dh = b64url(new Uint8Array((await crypto.subtle.exportKey("raw", pair.publicKey)) as ArrayBuffer));
  const keys = { p256dh, auth: b64url(crypto.getRandomValues(new Uint8Array(16))) };
  expect((await postJson("/push/subscriptions", { subscription: { endpoint, keys } }, await tokenFor(user))).status).toBe(201);
}

const queueCounts = (state: DurableObjectState) => ({
  events: state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM push_events").one().n,
  jobs: state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM push_jobs").one().n,
});

async function logRows(room: string): Promise<{ user_id: string; seq: number; status: string; http_status: number | null; error: string; attempt: number }[]> {
  const { results } = await env.DB.prepare("SELECT user_id, seq, status, http_status, error, attempt FROM push_logs WHERE room = ? ORDER BY attempt").bind(room).all<any>();
  return results;
}

/** Re-reads `read` until `done` holds (D1 rows and the room's queue have no event to await). */
async function until<T>(read: () => Promise<T>, done: (value: T) => boolean, what: string): Promise<T> {
  let value!: T;
  await eventually(async () => done((value = await read())), what);
  return value;
}

describe("room push queue", () => {
  it("queues on the send path only what can reach someone: not push:false, not a room of the sender alone", async () => {
    const room = uniqueRoom("pq-enqueue");
    const counts = await runInDurableObject(roomStub(room), async (instance: ChatRoom, state) => {
      const alone = await instance.send({ room, user: { id: "solo", name: "Solo" } }, { data: { text: "anyone?" } });
      const afterAlone = queueCounts(state).events;
      await instance.read({ room, user: { id: "pat", name: "Pat" } }, 0); // pat is now a member
      await instance.notify(room, { event: "quiet", data: {}, push: false });
      const afterQuiet = queueCounts(state).events;
      await instance.notify(room, { event: "loud", data: {} });
      const afterLoud = queueCounts(state).events;
      return { alone: alone.ok, afterAlone, afterQuiet, afterLoud };
    });
    expect(counts).toEqual({ alone: true, afterAlone: 0, afterQuiet: 0, afterLoud: 1 });
  });

  it("attempts each delivery at most 3 times, durably across eviction, logging every attempt in D1", async () => {
    const room = uniqueRoom("pq-retry");
    const [sender, away] = ["pq-sender", `pq-away-${crypto.randomUUID().slice(0, 8)}`];
    await subscribe(away, `https://push-${crypto.randomUUID().slice(0, 8)}.invalid/device`);
    expect((await postJson(`/rooms/${room}/read`, { seq: 0 }, await tokenFor(away))).status).toBe(204);
    expect((await postJson(`/rooms/${room}/messages`, { data: { text: "are you there?" } }, await tokenFor(sender))).status).toBe(201);

    // The alarm (10 ms after the send here) expands the event and makes attempt 1: a network error, retried later.
    let rows = await until(() => logRows(room), (r) => r.length === 1, "attempt 1");
    expect(rows[0]).toMatchObject({ user_id: away, seq: 1, status: "retry", http_status: null, attempt: 1 });
    expect(rows[0]!.error).toMatch(/network error/);

    for (const attempt of [2, 3]) {
      // Make the retry due now, and start from a fresh instance: the job and its attempt count are in storage.
      await runInDurableObject(roomStub(room), (_, state) => {
        expect(queueCounts(state)).toEqual({ events: 0, jobs: 1 });
        state.storage.sql.exec("UPDATE push_jobs SET next_at = 0");
      });
      await evictDurableObject(roomStub(room));
      await runDurableObjectAlarm(roomStub(room));
      rows = await until(() => logRows(room), (r) => r.length === attempt, `attempt ${attempt}`);
    }
    expect(rows.map((r) => [r.attempt, r.status, r.http_status])).toEqual([[1, "retry", null], [2, "retry", null], [3, "failed", null]]);
    expect(await runInDurableObject(roomStub(room), (_, state) => queueCounts(state))).toEqual({ events: 0, jobs: 0 });
  });
});
