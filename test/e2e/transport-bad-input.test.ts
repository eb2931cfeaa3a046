/**
 * Bad query input on the fallback transports (SPEC §3, §4): non-numeric or
 * out-of-range `wait`, `after`, `before`, `limit` and `Last-Event-ID` are
 * `400 invalid_query` in the contract's error shape, naming the parameter.
 * (The legacy API's `lastMessageId` and session ids are in legacy.test.ts.)
 */
import { describe, expect, inject, it } from "vitest";
import { tokenFor } from "./clients";
import { Api, SseClient, uniqueRoom } from "./transports";

const api = new Api(inject("serverUrl"));

function expectInvalidQuery(answer: { status: number; body: any; headers: Headers }, field: string): void {
  expect({ status: answer.status, body: answer.body }).toEqual({ status: 400, body: { error: { code: "invalid_query", message: expect.any(String) } } });
  expect(answer.headers.get("content-type")).toMatch(/^application\/json/);
  expect(answer.body.error.message).toContain(field);
}

describe("bad input on the SSE and long-poll routes", () => {
  const room = uniqueRoom("bad-input");

  it.each([
    ["wait=abc&after=0", "wait"],
    ["wait=-1&after=0", "wait"],
    ["wait=1e3&after=0", "wait"],
    ["wait=&after=0", "wait"],
    ["wait=0x10&after=0", "wait"],
    ["wait=1234567&after=0", "wait"],
    ["wait=5", "wait"], // nothing to wait past without after
    ["after=abc", "after"],
    ["after=-1", "after"],
    ["after=1.5", "after"],
    ["after=", "after"],
    ["after=1e2", "after"],
    ["after=9999999999999999", "after"],
    ["after=1&after=2", "after"],
    ["before=0", "before"],
    ["before=abc", "before"],
    ["before=-3", "before"],
    ["limit=0", "limit"],
    ["limit=1001", "limit"],
    ["limit=abc", "limit"],
    ["limit=-5", "limit"],
    ["limit=2.5", "limit"],
  ])("GET /rooms/:room/messages?%s → 400 invalid_query naming %s", async (query, field) => {
    expectInvalidQuery(await api.get(`/rooms/${room}/messages?${query}`, await tokenFor("alice")), field);
  });

  it.each([
    ["after=abc", {}, "after"],
    ["after=-1", {}, "after"],
    ["after=2.5", {}, "after"],
    ["", { "last-event-id": "abc" }, "Last-Event-ID"],
    ["", { "last-event-id": "-3" }, "Last-Event-ID"],
    ["after=0", { "last-event-id": "1.5" }, "Last-Event-ID"],
  ])("GET /rooms/:room/events?%s with %j → 400 invalid_query naming %s", async (query, headers, field) => {
    expectInvalidQuery(await api.get(`/rooms/${room}/events?${query}`, await tokenFor("alice"), headers as Record<string, string>), field);
  });

  it("an EventSource refused with 400 reports it and does not reconnect", async () => {
    const sse = new SseClient(`${api.base}/rooms/${room}/events?token=${await tokenFor("alice")}&after=nope`);
    try {
      const error = await sse.until(() => sse.errors[0], "the error event");
      expect(error.code).toBe(400);
      expect(sse.es.readyState).toBe(sse.es.CLOSED);
      expect(sse.connections).toHaveLength(1);
      expect(sse.connections[0]!.status).toBe(400);
    } finally {
      sse.close();
    }
  });

  it("the largest valid values are accepted", async () => {
    const token = await tokenFor("alice");
    const page = await api.messages(room, token, { after: 999_999_999_999_999, limit: 1000 });
    expect(page.status).toBe(200);
    expect(page.body.messages).toEqual([]);
    expect((await api.messages(room, token, { before: 1, limit: 1 })).status).toBe(200);
    expect((await api.messages(room, token, { after: 0, wait: 0 })).status).toBe(200);
  });
});
