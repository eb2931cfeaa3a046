/**
 * SPEC §3: user sends are limited per user per room (10/s, burst 20) with
 * 429 rate_limited and Retry-After; notify is not limited, and retries of an
 * accepted clientId are never refused.
 */
import { describe, expect, it } from "vitest";
import { notify, postJson, tokenFor, TestSocket } from "./helpers";
import { expectError, roomStatus, uniqueRoom } from "./support";

const BURST = 20;

function sendBurst(room: string, token: string, count: number, prefix = "m"): Promise<Response[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => postJson(`/rooms/${room}/messages`, { data: { text: `${prefix}${i}` }, clientId: `${prefix}${i}` }, token)));
}

describe("send rate limit", () => {
  // A burst beyond 20 from one user is cut off with 429 + Retry-After; the accepted ones get seqs, the refused none.
  it("more than 20 quick sends → 429 rate_limited with Retry-After", async () => {
    const room = uniqueRoom("rate");
    const token = await tokenFor("spammer");
    const started = Date.now();
    const responses = await sendBurst(room, token, 40);
    const elapsedMs = Date.now() - started;
    const accepted = responses.filter((r) => r.status === 201);
    const refused = responses.filter((r) => r.status === 429);
    expect(accepted.length + refused.length).toBe(40);
    // The burst, plus what the bucket refilled (10/s) while the requests were in flight.
    expect(accepted.length).toBeGreaterThanOrEqual(BURST);
    expect(accepted.length).toBeLessThanOrEqual(BURST + Math.ceil(elapsedMs / 100));
    for (const response of refused) {
      const retryAfter = Number(response.headers.get("retry-after"));
      expect(Number.isInteger(retryAfter) && retryAfter >= 1).toBe(true);
      await expectError(response, 429, "rate_limited");
    }
    expect((await roomStatus(room)).seq).toBe(accepted.length);
  });

  // The limit is per user and per room: others are unaffected.
  it("one user's burst does not limit another user or another room", async () => {
    const room = uniqueRoom("rate");
    const spammer = await tokenFor("spammer");
    await sendBurst(room, spammer, 40);
    const other = await postJson(`/rooms/${room}/messages`, { data: { text: "hi" } }, await tokenFor("calm"));
    expect(other.status).toBe(201);
    const elsewhere = await postJson(`/rooms/${uniqueRoom("rate")}/messages`, { data: { text: "hi" } }, spammer);
    expect(elsewhere.status).toBe(201);
  });

  // A retry of an accepted clientId is answered from memory, even while the user is limited.
  it("retrying an accepted clientId is not rate limited", async () => {
    const room = uniqueRoom("rate");
    const token = await tokenFor("spammer");
    const responses = await sendBurst(room, token, 40);
    expect(responses.some((r) => r.status === 429)).toBe(true);
    const retry = await postJson(`/rooms/${room}/messages`, { data: { text: "m0" }, clientId: "m0" }, token);
    expect(retry.status).toBe(200);
  });

  // Over WebSocket the limit is an error frame with the clientId and retryAfter; the socket stays open.
  it("over WebSocket: rate_limited error frames, socket stays open", async () => {
    const room = uniqueRoom("rate");
    const socket = await TestSocket.open(room, await tokenFor("spammer"));
    await socket.next((f) => f.type === "welcome");
    for (let i = 0; i < 40; i++) socket.send({ type: "send", data: { text: `w${i}` }, clientId: `w${i}` });
    const error = await socket.next((f) => f.type === "error");
    expect(error).toMatchObject({ code: "rate_limited", clientId: expect.stringMatching(/^w\d+$/) });
    expect(error.retryAfter).toBeGreaterThanOrEqual(1);
    socket.send({ type: "ping" });
    expect(await socket.next((f) => f.type === "pong")).toEqual({ type: "pong" });
    expect(socket.closed).toBe(false);
    socket.close();
  });

  // Server-side triggers are never limited by the send bucket.
  it("notify is not rate limited", async () => {
    const room = uniqueRoom("rate");
    const responses = await Promise.all(Array.from({ length: 60 }, (_, i) => notify(room, { event: "burst", data: { i } })));
    expect(responses.map((r) => r.status)).toEqual(Array(60).fill(202));
    expect((await roomStatus(room)).seq).toBe(60);
  });
});
