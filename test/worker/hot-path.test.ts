/**
 * The hot path's shortcuts keep the contract (docs/architecture.md, "Hot
 * path"): frames that arrive together are handled together (one storage
 * commit) but answered in the order they were sent; SSE streams write what
 * a moment gave them at once, every event once and in order; the D1 outbox
 * waits for a full batch under load; the room's last seq is derived, not
 * stored per event.
 */
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, notify, tokenFor, TestSocket } from "./helpers";
import { flushRoom, range, roomStatus, roomStub, seqsOf, uniqueRoom } from "./support";

/** The per-user burst in tests (SEND_BURST): sends beyond it are rate limited. */
const BURST = Number(env.SEND_BURST ?? 20);

/** Reads an SSE body until `count` events (`id:` lines) have arrived. */
async function sseEvents(response: Response, count: number): Promise<{ id: number; data: any }[]> {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const events = () =>
    [...text.matchAll(/^id: (\d+)\nevent: message\ndata: (.*)\n\n/gm)].map((m) => ({ id: Number(m[1]), data: JSON.parse(m[2]!) }));
  while (events().length < count) {
    const { done, value } = await reader.read();
    if (done) break;
    text += value;
  }
  await reader.cancel();
  return events();
}

describe("frames sent together", () => {
  // A client that pipelines (sends without waiting for acks) gets every answer in the order of its frames: acks,
  // error frames and the pong interleave exactly as the frames did, though a burst is handled as one batch. The
  // frames are handed to the room the way the runtime does when they arrive back to back (webSocketMessage, one
  // after another, before the batch's turn), so the batch really forms here.
  it("are answered in the order they were sent, with gap-free seqs, and reach every subscriber once, in order", async () => {
    const room = uniqueRoom("pipelined");
    const sender = await TestSocket.open(room, await tokenFor("sender"));
    const watcher = await TestSocket.open(room, await tokenFor("watcher"));
    await Promise.all([sender.next((f) => f.type === "welcome"), watcher.next((f) => f.type === "welcome")]);
    const stream = await call(`/rooms/${room}/events?token=${await tokenFor("streamer")}`);
    expect(stream.status).toBe(200);

    const sends = BURST - 1; // one more send below, as a retry, must not need a token
    const frames: string[] = [];
    const expected: ((f: any) => boolean)[] = [];
    for (let i = 1; i <= sends; i++) {
      frames.push(JSON.stringify({ type: "send", data: { text: `m${i}` }, clientId: `c${i}` }));
      expected.push((f) => f.type === "ack" && f.clientId === `c${i}` && f.seq === i);
      if (i === 3) {
        frames.push("{not json");
        expected.push((f) => f.type === "error" && f.code === "invalid_body");
      }
      if (i === 5) {
        frames.push(JSON.stringify({ type: "ping" }));
        expected.push((f) => f.type === "pong");
      }
      if (i === 7) {
        // A retry of an earlier clientId inside the same batch: the original seq, no new event.
        frames.push(JSON.stringify({ type: "send", data: { text: "m2 again" }, clientId: "c2" }));
        expected.push((f) => f.type === "ack" && f.clientId === "c2" && f.seq === 2);
      }
    }
    await runInDurableObject(roomStub(room), (instance, state) => {
      const room_ = instance as any;
      const socket = state.getWebSockets().find((ws) => (ws.deserializeAttachment() as { user: { id: string } }).user.id === "sender")!;
      for (const frame of frames) void room_.webSocketMessage(socket, frame);
    });

    await sender.untilMessages(sends);
    const answers = sender.frames.filter((f) => f?.type !== "message" && f?.type !== "presence");
    expect(answers).toHaveLength(expected.length);
    answers.forEach((answer, i) => expect(expected[i]!(answer), `answer ${i}: ${JSON.stringify(answer)}`).toBe(true));

    for (const socket of [sender, watcher]) expect(seqsOf(await socket.untilMessages(sends))).toEqual(range(1, sends));
    const sse = await sseEvents(stream, sends);
    expect(sse.map((e) => e.id)).toEqual(range(1, sends));
    expect(sse.map((e) => e.data.data.text)).toEqual(range(1, sends).map((i) => `m${i}`));
    sender.close();
    watcher.close();
  });
});

describe("SSE writes", () => {
  // Many publishers at once: each stream gets every event once, in seq order, however the writes were grouped.
  it("deliver every event of concurrent publishers once, in order, to every stream", async () => {
    const room = uniqueRoom("sse-burst");
    const token = await tokenFor("reader");
    const streams = await Promise.all(range(1, 5).map(() => call(`/rooms/${room}/events?token=${token}`)));
    expect(streams.map((s) => s.status)).toEqual([200, 200, 200, 200, 200]);
    const total = 120;
    const responses = await Promise.all(range(1, total).map((i) => notify(room, { event: "burst", data: { i } })));
    expect(responses.map((r) => r.status)).toEqual(Array(total).fill(202));
    for (const stream of streams) {
      const events = await sseEvents(stream, total);
      expect(events.map((e) => e.id)).toEqual(range(1, total));
      expect(new Set(events.map((e) => e.data.data.i)).size).toBe(total);
    }
  });
});

describe("D1 outbox under load", () => {
  // After a quiet spell the first event is flushed after D1_FLUSH_DELAY_MS; while flushes keep coming, the next one
  // waits for a full batch (500) or ten times that delay, so a D1 round trip carries many events, not a few.
  it("flushes soon after a quiet spell, then waits for a full batch", async () => {
    const room = uniqueRoom("d1-load");
    const stub = roomStub(room);
    const flushDelayMs = Number(env.D1_FLUSH_DELAY_MS);
    await runInDurableObject(stub, async (instance, state) => {
      const room_ = instance as any;
      await room_.notify(room, { event: "first", data: {} });
      const alarm = await state.storage.getAlarm();
      expect(alarm).not.toBeNull();
      expect(alarm! - Date.now()).toBeLessThanOrEqual(flushDelayMs);
    });
    await flushRoom(room);
    await runInDurableObject(stub, async (instance, state) => {
      const room_ = instance as any;
      await room_.notify(room, { event: "soon after", data: {} });
      const alarm = await state.storage.getAlarm();
      expect(alarm).not.toBeNull();
      expect(alarm! - Date.now()).toBeGreaterThan(flushDelayMs);
      for (let i = 0; i < 499; i++) await room_.notify(room, { event: "load", data: { i } });
      // A full batch is waiting: the flush is due now (or has already run).
      const due = await state.storage.getAlarm();
      if (due !== null) expect(due).toBeLessThanOrEqual(Date.now());
    });
    const status = (await flushRoom(room)) as any;
    expect(status.outbox.d1Events).toBe(501);
    expect(status.outbox.flushedSeq).toBe(501);
  });
});

describe("the last seq", () => {
  // It is not a stored counter any more: a fresh instance derives it from the log, even when a trim emptied it.
  it("continues without reuse after an eviction, also when every event was trimmed", async () => {
    const room = uniqueRoom("last-seq");
    for (let i = 1; i <= 3; i++) expect((await notify(room, { event: "e", data: { i } })).status).toBe(202);
    await flushRoom(room);
    // Trim everything D1 holds (as an old, idle room would be trimmed by age).
    await runInDurableObject(roomStub(room), (instance) => (instance as any).log.trim(0, Date.now() + 1));
    expect((await roomStatus(room)).trimmedSeq).toBe(3);
    await evictDurableObject(roomStub(room));
    const response = await notify(room, { event: "after", data: {} });
    expect(((await response.json()) as any).message.seq).toBe(4);
    expect((await roomStatus(room)).seq).toBe(4);
  });
});
