/**
 * Server-Sent Events (SPEC §4) against a real `wrangler dev`, with the
 * `eventsource` package as the client: what a browser's EventSource would
 * see, plus the raw bytes of each connection.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { tokenFor, WsClient } from "./clients";
import { DevServer } from "./server";
import { Api, duplicates, range, RawStream, sseBlocks, SseClient, uniqueRoom, within, serverLogOnFailure, type Envelope } from "./transports";

const api = new Api(inject("serverUrl"));
const eventsUrl = (server: Api, room: string, token: string, query = "") => `${server.base}/rooms/${room}/events?token=${token}${query}`;

describe("SSE against wrangler dev", () => {
  const open: { close(): void }[] = [];
  const track = <T extends { close(): void }>(client: T): T => (open.push(client), client);
  afterAll(() => open.forEach((c) => c.close()));

  it("sends retry: first, then each event as id: <seq> / event: message / data: <envelope>", async () => {
    const room = uniqueRoom("sse-format");
    const alice = await tokenFor("alice");
    const bob = await tokenFor("bob", { rooms: [room], name: "Bob" });

    const raw = await RawStream.open(eventsUrl(api, room, alice));
    track({ close: () => raw.abort() });
    expect(raw.response.status).toBe(200);
    expect(raw.response.headers.get("content-type")).toMatch(/^text\/event-stream/);
    expect(raw.response.headers.get("cache-control")).toContain("no-cache");
    await raw.untilText(/\n\n/, "the first SSE block");
    expect(raw.text).toMatch(/^retry: \d+\n\n/);

    const sse = track(new SseClient(eventsUrl(api, room, alice)));
    await sse.untilOpen();

    const sent = await api.send(room, bob, "hello", "c-1");
    expect(sent.status).toBe(201);
    const notified = await api.notify(room, "ticket_assigned", { ticket: 7 });
    const signed = await api.notify(room, "note", { text: "from the helpdesk" }, { from: { id: "desk", name: "Helpdesk" } });
    const published: Envelope[] = [sent.body.message, notified, signed];
    expect(published.map((e) => e.seq)).toEqual([1, 2, 3]);

    await within(sse.untilSeq(3), 10_000, "three events over EventSource");
    const received = sse.events.filter((e) => e.type === "message");
    expect(received.map((e) => e.lastEventId)).toEqual(["1", "2", "3"]);
    expect(received.map((e) => JSON.parse(e.data))).toEqual(published);
    expect(sse.messages()[1]).not.toHaveProperty("from");
    expect(sse.messages()[0]).toMatchObject({ clientId: "c-1", from: { id: "bob", name: "Bob" }, data: { text: "hello" } });

    await raw.untilText(/id: 3\nevent: message\ndata: [^\n]*\n\n/, "seq 3 on the raw stream");
    const blocks = sseBlocks(raw.text);
    expect(blocks[0]).toEqual({ retry: expect.stringMatching(/^\d+$/) });
    const events = blocks.filter((b) => b.id !== undefined);
    expect(events).toEqual(published.map((e) => ({ id: String(e.seq), event: "message", data: JSON.stringify(e) })));
  });

  it("carries typing and presence as event: typing|presence with no id, leaving Last-Event-ID alone", async () => {
    const room = uniqueRoom("sse-signals");
    const alice = await tokenFor("alice");
    const bob = await tokenFor("bob", { rooms: [room], name: "Bob" });
    const sse = track(new SseClient(eventsUrl(api, room, alice)));
    await sse.untilOpen();
    await api.notify(room, "tick");
    await sse.untilSeq(1);

    expect((await api.post(`/rooms/${room}/typing`, {}, bob)).status).toBe(204);
    const typing = await sse.untilEvent("typing");
    expect(JSON.parse(typing.data)).toEqual({ type: "typing", user: { id: "bob", name: "Bob" } });
    expect(typing.lastEventId).toBe("1");

    const ws = track(await WsClient.open(`${api.wsBase}/rooms/${room}/ws?token=${bob}`));
    const presence = await sse.until(() => sse.events.find((e) => e.type === "presence" && JSON.parse(e.data).user?.id === "bob"), "bob's presence join");
    expect(JSON.parse(presence.data)).toEqual({ type: "presence", action: "join", user: { id: "bob", name: "Bob" } });
    expect(presence.lastEventId).toBe("1");
    ws.close();

    for (const block of sseBlocks(sse.current.raw)) {
      if (block.event === "typing" || block.event === "presence") expect(block).not.toHaveProperty("id");
    }
  });

  it("takes the token as a Bearer header too, and an unauthenticated EventSource fails without retrying", async () => {
    const room = uniqueRoom("sse-auth");
    const withHeader = track(new SseClient(`${api.base}/rooms/${room}/events`, { authorization: `Bearer ${await tokenFor("alice")}` }));
    await withHeader.untilOpen();
    const event = await api.notify(room, "tick");
    await withHeader.untilSeq(1);
    expect(withHeader.messages()).toEqual([event]);

    for (const [url, status] of [
      [`${api.base}/rooms/${room}/events`, 401],
      [`${api.base}/rooms/${room}/events?token=${await tokenFor("mallory", { rooms: ["elsewhere"] })}`, 403],
    ] as const) {
      const refused = track(new SseClient(url));
      const error = await refused.until(() => refused.errors[0], `the ${status} error event`);
      expect(error.code).toBe(status);
      expect(refused.es.readyState).toBe(refused.es.CLOSED);
      expect(refused.connections).toHaveLength(1);
    }
  });

  it("after= replays the events after that seq, then goes live", async () => {
    const room = uniqueRoom("sse-after");
    const alice = await tokenFor("alice");
    const published: Envelope[] = [];
    for (let i = 1; i <= 5; i++) published.push(await api.notify(room, "tick", { i }));

    const sse = track(new SseClient(eventsUrl(api, room, alice, "&after=2")));
    await within(sse.untilSeq(5), 10_000, "the replay of 3..5");
    published.push(await api.notify(room, "tick", { i: 6 }));
    await within(sse.untilSeq(6), 10_000, "live seq 6");

    expect(sse.messages()).toEqual(published.slice(2));
    expect(sseBlocks(sse.current.raw)[0]).toHaveProperty("retry");
  });

  it("resumes with Last-Event-ID after a dropped connection: exactly the missed events, none repeated", async () => {
    const room = uniqueRoom("sse-resume");
    const alice = await tokenFor("alice");
    await api.notify(room, "tick", { i: 1 });
    await api.notify(room, "tick", { i: 2 });
    // ?after=0 stays in the URL on every reconnect: Last-Event-ID must win over it.
    const sse = track(new SseClient(eventsUrl(api, room, alice, "&after=0")));
    await sse.untilSeq(2);
    await api.notify(room, "tick", { i: 3 });
    await sse.untilSeq(3);

    const backOnline = sse.goOffline();
    sse.current.drop();
    await sse.until(() => sse.errors.length > 0, "EventSource to notice the drop");
    const missed: Envelope[] = [];
    for (let i = 4; i <= 6; i++) missed.push(await api.notify(room, "tick", { i }));
    expect(sse.seqs()).toEqual([1, 2, 3]);
    backOnline();

    await within(sse.untilSeq(6), 15_000, "the missed events after reconnecting");
    await api.notify(room, "tick", { i: 7 });
    await within(sse.untilSeq(7), 10_000, "live seq 7 after the resume");

    expect(sse.seqs()).toEqual(range(1, 7));
    expect(duplicates(sse.seqs())).toEqual([]);
    expect(sse.connections).toHaveLength(2);
    expect(sse.connections[0]!.requestHeaders.get("last-event-id")).toBeNull();
    expect(sse.connections[1]!.requestHeaders.get("last-event-id")).toBe("3");
    expect(sse.messages().slice(3, 6)).toEqual(missed);
    expect(sse.events.filter((e) => e.type === "message" && e.connection === 1).map((e) => e.lastEventId)).toEqual(["4", "5", "6", "7"]);
    expect(sse.connections[1]!.raw).toMatch(/^retry: \d+\n\nid: 4\n/);
  });
});

describe("SSE with a 1 s heartbeat, a 5-event tail and fast D1 flushes (own server)", () => {
  let server: DevServer;
  let own: Api;
  const open: { close(): void }[] = [];
  const track = <T extends { close(): void }>(client: T): T => (open.push(client), client);

  beforeEach(serverLogOnFailure(() => server?.output));
  beforeAll(async () => {
    server = await DevServer.start({ vars: { SSE_HEARTBEAT_SECONDS: "1", ROOM_TAIL_EVENTS: "5", D1_FLUSH_DELAY_MS: "10" } });
    own = new Api(server.url);
  });
  afterAll(async () => {
    open.forEach((c) => c.close());
    await server?.stop();
  });

  it("sends comment heartbeats on an idle stream, which EventSource ignores", async () => {
    const room = uniqueRoom("sse-heartbeat");
    const sse = track(new SseClient(eventsUrl(own, room, await tokenFor("alice"))));
    await sse.untilOpen();
    const started = performance.now();
    await sse.until(() => sseBlocks(sse.current.raw).filter((b) => b.comment !== undefined).length >= 2 || undefined, "two heartbeat comments", 10_000);
    const elapsed = performance.now() - started;
    expect(sse.current.raw).toMatch(/^retry: \d+\n\n(: ?[^\n]*\n\n){2}/);
    expect(sse.events).toEqual([]);
    expect(sse.errors).toEqual([]);
    expect(elapsed).toBeLessThan(6_000); // two at 1 s intervals
  });

  it("replays from D1 when the resume point is older than the room keeps (after= and Last-Event-ID)", async () => {
    const room = uniqueRoom("sse-d1");
    const alice = await tokenFor("alice");
    const published: Envelope[] = [];
    for (let i = 1; i <= 20; i++) published.push(await own.notify(room, "tick", { i }));
    await own.untilStatus(room, (s) => s.outbox.pending === 0 && s.trimmedSeq >= 10, "events 1..10 only in D1");

    const sse = track(new SseClient(eventsUrl(own, room, alice, "&after=2")));
    await within(sse.untilSeq(20), 15_000, "the replay of 3..20");
    published.push(await own.notify(room, "tick", { i: 21 }));
    await within(sse.untilSeq(21), 10_000, "live seq 21");
    expect(sse.messages()).toEqual(published.slice(2));

    // A reconnecting client's header wins over ?after=.
    const raw = await RawStream.open(eventsUrl(own, room, alice, "&after=0"), { "last-event-id": "4" });
    track({ close: () => raw.abort() });
    await raw.untilText(/id: 21\nevent: message\ndata: [^\n]*\n\n/, "the replay of 5..21");
    const replayed = sseBlocks(raw.text).filter((b) => b.id !== undefined);
    expect(replayed.map((b) => JSON.parse(b.data!))).toEqual(published.slice(4));
  });

  it("removes a stream from the room when its client goes away", async () => {
    const room = uniqueRoom("sse-gone");
    const alice = await RawStream.open(eventsUrl(own, room, await tokenFor("alice")));
    const bob = await RawStream.open(eventsUrl(own, room, await tokenFor("bob")));
    track({ close: () => (alice.abort(), bob.abort()) });
    await own.untilStatus(room, (s) => s.subscribers === 2, "two SSE subscribers");

    const left = performance.now();
    alice.abort();
    // wrangler dev tells the object nothing when a client disconnects: the next write
    // (a heartbeat, every second here) fails and removes the stream.
    await own.untilStatus(room, (s) => s.subscribers === 1, "alice's stream removed", 10_000);
    const removedAfter = performance.now() - left;

    const event = await own.notify(room, "still-here");
    await bob.untilText(/id: 1\nevent: message\ndata: [^\n]*\n\n/, "bob still live");
    expect(JSON.parse(sseBlocks(bob.text).find((b) => b.id === "1")!.data!)).toEqual(event);
    bob.abort();
    await own.untilStatus(room, (s) => s.subscribers === 0, "bob's stream removed", 10_000);
    expect(removedAfter).toBeLessThan(8_000); // two heartbeats at most, with room for a loaded machine
  });
});
