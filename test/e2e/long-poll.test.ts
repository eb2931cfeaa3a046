/**
 * Long-poll and poll, `GET /rooms/:room/messages` (SPEC §4), against a real
 * `wrangler dev`: held polls woken by the room's fan-out, timeouts, paging
 * across the D1 boundary, the wait clamp, and a thousand held polls.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { tokenFor } from "./clients";
import { DevServer } from "./server";
import { Api, range, uniqueRoom, within, type Answer, type Envelope, serverLogOnFailure, type Page } from "./transports";

const api = new Api(inject("serverUrl"));
const seqsOf = (answer: Answer<Page>) => answer.body.messages.map((m) => m.seq);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}

describe("long-poll against wrangler dev", () => {
  it("holds a poll until an event arrives, then answers within milliseconds of it", async () => {
    const room = uniqueRoom("lp-wake");
    const token = await tokenFor("alice");
    let settled = false;
    const poll = api.messages(room, token, { after: 0, wait: 20 }).finally(() => (settled = true));
    await api.untilStatus(room, (s) => s.subscribers === 1, "the poll to be held");
    expect(settled).toBe(false);

    const sentAt = performance.now();
    const event = await api.notify(room, "wake", { n: 1 });
    const answer = await within(poll, 10_000, "the woken poll");
    const wake = answer.at - sentAt;
    console.info(`long-poll wake: answered ${wake.toFixed(1)} ms after the notify was sent (held ${answer.ms.toFixed(0)} ms in all)`);

    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ messages: [event], seq: 1 });
    // Woken by the event (it is in the answer), far from the 20 s it could have waited; the wake
    // latency is printed above, and measured in the benchmarks, not bounded here.
    expect(answer.ms).toBeLessThan(15_000);
    await api.untilStatus(room, (s) => s.subscribers === 0, "the answered poll to leave");
  });

  it("answers at once without wait or when events are ready, and with an empty page when the wait runs out", async () => {
    const room = uniqueRoom("lp-timeout");
    const token = await tokenFor("alice");
    const first = await api.notify(room, "tick", { i: 1 });
    const second = await api.notify(room, "tick", { i: 2 });

    const poll = await api.messages(room, token, { after: 2 });
    expect(poll.status).toBe(200);
    expect(poll.body).toEqual({ messages: [], seq: 2 });

    const ready = await api.messages(room, token, { after: 0, wait: 20 });
    expect(ready.body).toEqual({ messages: [first, second], seq: 2 });
    expect(ready.ms).toBeLessThan(15_000); // answered at once, not after the 20 s wait

    const timedOut = await api.messages(room, token, { after: 2, wait: 1.5 });
    expect(timedOut.status).toBe(200);
    expect(timedOut.body).toEqual({ messages: [], seq: 2 });
    expect(timedOut.ms).toBeGreaterThanOrEqual(1_400);
    expect(timedOut.ms).toBeLessThan(10_000);
  });

  it("accepts wait=999 (clamped, not refused) and still answers on the next event", async () => {
    const room = uniqueRoom("lp-clamp");
    const token = await tokenFor("alice");
    const poll = api.messages(room, token, { after: 0, wait: 999 });
    await api.untilStatus(room, (s) => s.subscribers === 1, "the poll to be held");
    const event = await api.notify(room, "wake");
    const answer = await within(poll, 10_000, "the woken poll");
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ messages: [event], seq: 1 });
  });

  it("removes a poll its client abandoned, by the end of its wait at the latest", async () => {
    const room = uniqueRoom("lp-abort");
    const token = await tokenFor("alice");
    const abort = new AbortController();
    const poll = api.messages(room, token, { after: 0, wait: 3 }, abort.signal);
    await api.untilStatus(room, (s) => s.subscribers === 1, "the poll to be held");
    const abortedAt = performance.now();
    abort.abort();
    await expect(poll).rejects.toThrow();
    // wrangler dev never tells the object that a client went away, so here the
    // waiter leaves when its wait ends; in production the request's abort signal
    // removes it at once (see wrangler.toml's compatibility flags).
    await api.untilStatus(room, (s) => s.subscribers === 0, "the abandoned poll to leave", 10_000);
    expect(performance.now() - abortedAt).toBeLessThan(8_000);

    // The room is unaffected: the next poll is held and woken as usual.
    const next = api.messages(room, token, { after: 0, wait: 20 });
    await api.untilStatus(room, (s) => s.subscribers === 1, "the next poll to be held");
    const event = await api.notify(room, "after-abort");
    expect((await within(next, 10_000, "the next poll")).body).toEqual({ messages: [event], seq: 1 });
  });

  it("wakes 1,000 concurrent held polls with one notify, each with exactly that event", { timeout: 180_000 }, async () => {
    const room = uniqueRoom("lp-1000");
    const tokens = await Promise.all(range(1, 10).map((i) => tokenFor(`poller-${i}`)));
    const registering = performance.now();
    const polls = range(0, 999).map((i) => api.messages(room, tokens[i % tokens.length]!, { after: 0, wait: 25 }));
    await api.untilStatus(room, (s) => s.subscribers === 1000, "1,000 held polls", 60_000);
    const heldAfter = performance.now() - registering;

    const sentAt = performance.now();
    const event = await api.notify(room, "wake-all", { n: 1000 });
    const notifyMs = performance.now() - sentAt;
    const answers = await within(Promise.all(polls), 60_000, "1,000 answers");
    const latencies = answers.map((a) => a.at - sentAt).sort((a, b) => a - b);
    console.info(
      `1,000 long-polls: all held after ${heldAfter.toFixed(0)} ms; notify answered in ${notifyMs.toFixed(0)} ms; ` +
        `woken first ${latencies[0]!.toFixed(0)} ms, p50 ${percentile(latencies, 50).toFixed(0)} ms, p99 ${percentile(latencies, 99).toFixed(0)} ms, last ${latencies.at(-1)!.toFixed(0)} ms after the notify was sent`,
    );

    const wrong = answers.filter((a) => a.status !== 200 || a.body.messages.length !== 1 || a.body.messages[0]!.id !== event.id || a.body.seq !== 1);
    expect(wrong.map((a) => ({ status: a.status, body: a.body })).slice(0, 3)).toEqual([]);
    for (const answer of answers) expect(answer.body.messages).toEqual([event]);
    // Every answer carries the event, so every poll was woken by it (one that timed out answers an empty page).
    await api.untilStatus(room, (s) => s.subscribers === 0, "every answered poll to leave");
  });
});

describe("long-poll with a 5-event tail, fast D1 flushes and a 5 s wait cap (own server)", () => {
  let server: DevServer;
  let own: Api;
  let token: string;
  const room = uniqueRoom("lp-d1");
  const published: Envelope[] = [];

  beforeEach(serverLogOnFailure(() => server?.output));
  beforeAll(async () => {
    server = await DevServer.start({ vars: { ROOM_TAIL_EVENTS: "5", D1_FLUSH_DELAY_MS: "10", MAX_WAIT_SECONDS: "5" } });
    own = new Api(server.url);
    token = await tokenFor("alice");
    for (let i = 1; i <= 25; i++) published.push(await own.notify(room, "tick", { i }));
    await own.untilStatus(room, (s) => s.outbox.pending === 0 && s.trimmedSeq >= 15, "events trimmed to D1");
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("serves `after` in the D1 range gap-free, with the envelopes as published", async () => {
    const status = await own.status(room);
    expect(status.trimmedSeq).toBeGreaterThanOrEqual(15); // only the newest few remain in the object

    const fromD1 = await own.messages(room, token, { after: 2, limit: 5 });
    expect(fromD1.status).toBe(200);
    expect(fromD1.body).toEqual({ messages: published.slice(2, 7), seq: 25 });
    expect((await own.messages(room, token, { after: 0 })).body.messages).toEqual(published);
    const across = await own.messages(room, token, { after: 17, limit: 6 });
    expect(across.body.messages).toEqual(published.slice(17, 23)); // D1 then the object's tail

    // A long-poll whose cursor is in the D1 range answers at once with what it missed.
    const behind = await own.messages(room, token, { after: 3, wait: 20 });
    expect(behind.body).toEqual({ messages: published.slice(3), seq: 25 });
    // Not held: a held poll would answer only at the 5 s cap (a cap long enough that a loaded machine's plain read stays far below it).
    expect(behind.ms).toBeLessThan(4_500);
  });

  it("pages with limit and before, across the D1 boundary", async () => {
    const page = async (query: Record<string, number>) => {
      const answer = await own.messages(room, token, query);
      expect(answer.status).toBe(200);
      expect(answer.body.seq).toBe(25);
      return seqsOf(answer);
    };
    expect(await page({ limit: 10 })).toEqual(range(16, 25)); // no cursor: the newest page
    expect(await page({ before: 16, limit: 10 })).toEqual(range(6, 15));
    expect(await page({ before: 6, limit: 10 })).toEqual(range(1, 5));
    expect(await page({ before: 1 })).toEqual([]);
    expect(await page({ after: 5, before: 9 })).toEqual([6, 7, 8]);
    expect(await page({ after: 20, limit: 3 })).toEqual([21, 22, 23]);
    expect(await page({ before: 1000, limit: 3 })).toEqual([23, 24, 25]);

    // Walking back page by page yields the whole log once, as published.
    const walked: Envelope[] = [];
    let before = 26;
    for (let guard = 0; guard < 20 && before > 1; guard++) {
      const answer = await own.messages(room, token, { before, limit: 7 });
      walked.unshift(...answer.body.messages);
      before = answer.body.messages[0]?.seq ?? 1;
    }
    expect(walked).toEqual(published);
  });

  it("clamps wait to MAX_WAIT_SECONDS: wait=999 answers empty at the cap", async () => {
    const clamped = await own.messages(room, token, { after: 25, wait: 999 });
    expect(clamped.status).toBe(200);
    expect(clamped.body).toEqual({ messages: [], seq: 25 });
    expect(clamped.ms).toBeGreaterThanOrEqual(4_900);
    expect(clamped.ms).toBeLessThan(15_000);
  });

  it("legacy longPoll=true answers an empty list when the clamped wait runs out", async () => {
    const session = 900_000 + Math.floor(Math.random() * 99_999);
    const answer = await own.get(`/api/chat/messages/${session}?lastMessageId=0&longPoll=true`, token);
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ messages: [], longPolling: true });
    expect(answer.ms).toBeGreaterThanOrEqual(4_900);
    expect(answer.ms).toBeLessThan(15_000);
  });
});
