/**
 * Cross-transport resume (SPEC §4): every transport serves the same room
 * log, so a client may leave one and resume on another from the last seq it
 * saw, with nothing missed and nothing repeated, while the room stays busy.
 */
import { describe, expect, inject, it, onTestFinished } from "vitest";
import { tokenFor, WsClient } from "./clients";
import { Api, duplicates, range, SseClient, within, uniqueRoom, type Envelope } from "./transports";

const api = new Api(inject("serverUrl"));

describe("cross-transport resume against wrangler dev", () => {
  it("a client moving WebSocket → long-poll → SSE → WebSocket receives every event exactly once, seqs 1..N", async () => {
    const room = uniqueRoom("cross");
    const carol = await tokenFor("carol");
    const dave = await tokenFor("dave", { rooms: [room], name: "Dave" });
    const published = new Map<number, Envelope>();
    const record = (e: Envelope) => published.set(e.seq, e);

    // Two producers keep the room busy through every switch: a backend
    // notifying back to back, and a user sending over HTTP within the rate limit.
    let publishing = true;
    const open: { close(): void }[] = [];
    const track = <T extends { close(): void }>(client: T): T => (open.push(client), client);
    onTestFinished(() => {
      publishing = false; // also when the test fails half-way
      for (const client of open) client.close();
    });
    const notifier = (async () => {
      for (let i = 1; publishing && i <= 5_000; i++) record(await api.notify(room, "tick", { i }));
    })();
    const sender = (async () => {
      for (let i = 1; publishing && i <= 500; i++) {
        const answer = await api.send(room, dave, `dave ${i}`, `dave-${i}`);
        if (answer.status !== 201) throw new Error(`dave's send: ${answer.status} ${JSON.stringify(answer.body)}`);
        record(answer.body.message);
        await new Promise((r) => setTimeout(r, 150)); // pacing under the 10/s send limit
      }
    })();
    const producers = Promise.all([notifier, sender]);
    producers.catch(() => {}); // awaited (and so reported) below
    /** Events published (and accepted) while the client holds no transport at all. */
    const publishWhileAway = async () => {
      for (let i = 0; i < 3; i++) record(await api.notify(room, "while-away", { i }));
    };

    const received: Envelope[] = [];
    const phases: { transport: string; seqs: number[] }[] = [];
    const last = () => received.at(-1)?.seq ?? 0;
    const take = (transport: string, messages: Envelope[]) => {
      phases.push({ transport, seqs: messages.map((m) => m.seq) });
      received.push(...messages);
    };

    // 1. WebSocket from the start of the room, which already has events.
    await publishWhileAway();
    const ws1 = track(await WsClient.open(`${api.wsBase}/rooms/${room}/ws?token=${carol}&after=0`));
    await within(ws1.untilMessages(10), 15_000, "10 messages on the first WebSocket");
    ws1.close();
    await ws1.closed;
    take("websocket", ws1.messages());
    await publishWhileAway();

    // 2. Long-poll from the last seq seen.
    const polled: Envelope[] = [];
    for (let round = 0; round < 200 && polled.length < 10; round++) {
      const answer = await api.messages(room, carol, { after: polled.at(-1)?.seq ?? last(), wait: 10 });
      expect(answer.status).toBe(200);
      polled.push(...answer.body.messages);
    }
    take("long-poll", polled);
    await publishWhileAway();

    // 3. SSE from the last seq seen.
    const sse = track(new SseClient(`${api.base}/rooms/${room}/events?token=${carol}&after=${last()}`));
    await within(sse.until(() => sse.messages().length >= 10 || undefined, "10 SSE messages"), 15_000, "10 messages over SSE");
    sse.close();
    take("sse", sse.messages());
    await publishWhileAway();

    // 4. WebSocket again, until the producers have stopped and everything has arrived.
    const ws2 = track(await WsClient.open(`${api.wsBase}/rooms/${room}/ws?token=${carol}&after=${last()}`));
    await within(ws2.untilMessages(10), 15_000, "10 messages on the second WebSocket");
    publishing = false;
    await producers;
    const final = Math.max(...published.keys());
    await within(ws2.until((frames) => frames.some((f) => f.type === "message" && f.message.seq === final)), 15_000, `seq ${final} on the last WebSocket`);
    ws2.close();
    take("websocket", ws2.messages());

    const seqs = received.map((m) => m.seq);
    expect(duplicates(seqs)).toEqual([]);
    expect(seqs).toEqual(range(1, final));
    expect(published.size).toBe(final);
    for (const message of received) expect(message).toEqual(published.get(message.seq));
    expect(phases.map((p) => p.transport)).toEqual(["websocket", "long-poll", "sse", "websocket"]);
    for (const phase of phases) expect(phase.seqs.length).toBeGreaterThanOrEqual(10);
    // Each transport picked up exactly where the previous one stopped.
    for (let i = 1; i < phases.length; i++) expect(phases[i]!.seqs[0]).toBe(phases[i - 1]!.seqs.at(-1)! + 1);
    expect(received.some((m) => m.from?.id === "dave")).toBe(true);
    expect(received.filter((m) => m.event === "while-away")).toHaveLength(12);
  });
});
