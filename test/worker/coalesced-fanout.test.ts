/**
 * Coalesced fan-out (SPEC §4, `batch=1`) inside workerd: a busy room sends a
 * socket that opted in one `messages` frame for everything it has not seen,
 * and one `acks` frame for the sends it accepted together. What must hold:
 *
 *   - a burst reaches every socket, batch=1 or not, gap-free, in order, each
 *     event once; batch=1 sockets in fewer frames than events, others in one
 *     `message` frame per event, as before;
 *   - a coalesced frame carries at most 256 events and 64 KiB (a larger
 *     event goes alone);
 *   - the acks of sends accepted together come in one frame, every clientId
 *     once, in the order sent, before the messages they acknowledge;
 *   - flow control counts coalesced frames in bytes: a batch socket that
 *     stops acking is closed with 1013 and resumes gap-free with `after=`;
 *   - the flag survives hibernation.
 */
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { ChatRoom } from "../../objects/ChatRoom";
import { EncodedEvent } from "../../objects/room/encoded-event";
import { EventRun, MAX_FRAME_BYTES, MAX_FRAME_EVENTS } from "../../objects/room/event-run";
import { CLOSE_SLOW_CONSUMER, SLOW_CONSUMER_REASON } from "../../objects/room/websocket-subscriber";
import { notify, TestSocket, tokenFor } from "./helpers";
import { range, roomStatus, roomStub, seqsOf, uniqueRoom } from "./support";

const CAP = Number(env.WS_MAX_UNACKED_BYTES);
const utf8 = (text: string) => new TextEncoder().encode(text).byteLength;

async function openSocket(room: string, user: string, query = ""): Promise<TestSocket> {
  const socket = await TestSocket.open(room, await tokenFor(user), query);
  await socket.next((f) => f.type === "welcome");
  return socket;
}

/** Frames that carry events, with their size on the wire. */
function eventFrames(socket: TestSocket): { frame: any; bytes: number }[] {
  return socket.frames.filter((f) => f?.type === "message" || f?.type === "messages").map((frame) => ({ frame, bytes: utf8(JSON.stringify(frame)) }));
}

async function notifyMany(room: string, events: unknown[]): Promise<Response> {
  return notify(room, { events });
}

describe("coalesced fan-out (batch=1)", () => {
  it("a burst of 500 notifies reaches 50 batch=1 and 50 plain sockets gap-free, in order, once; batch sockets in fewer frames", async () => {
    const room = uniqueRoom("coalesce");
    const batch = await Promise.all(range(1, 50).map(() => openSocket(room, "batcher", "&batch=1")));
    const plain = await Promise.all(range(1, 50).map(() => openSocket(room, "plain")));
    const total = 500;
    const answers = await Promise.all(range(1, total).map((i) => notify(room, { event: "burst", data: { i } })));
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 202));

    for (const socket of [...batch, ...plain]) expect(seqsOf(await socket.untilMessages(total))).toEqual(range(1, total));
    for (const socket of plain) {
      expect(socket.frames.filter((f) => f?.type === "messages")).toEqual([]);
      expect(eventFrames(socket).length).toBe(total);
    }
    const batchFrames = batch.map((socket) => eventFrames(socket).length);
    for (const frames of batchFrames) expect(frames).toBeLessThan(total);
    console.info(`coalesced fan-out in workerd: ${total} concurrent notifies, 50 batch=1 sockets got ${Math.min(...batchFrames)}-${Math.max(...batchFrames)} frames each, 50 plain sockets ${total}`);
    // Nothing more than the burst arrives (no repeats after the last event).
    const last = await notify(room, { event: "marker", data: {} });
    expect(last.status).toBe(202);
    for (const socket of [...batch, ...plain]) expect(seqsOf(await socket.untilMessages(total + 1))).toEqual(range(1, total + 1));
    for (const socket of [...batch, ...plain]) socket.close();
  });

  it("events accepted together (a batch notify) reach a batch=1 socket as coalesced frames within 64 KiB; plain sockets one frame per event", async () => {
    const room = uniqueRoom("coalesce-size");
    const batch = await openSocket(room, "batcher", "&batch=1");
    const plain = await openSocket(room, "plain");
    // 100 events of about 14 KiB: 1.4 MiB accepted in one turn.
    const events = range(1, 100).map((i) => ({ event: "bulk", data: { i, text: "é".repeat(7_000) } }));
    expect((await notifyMany(room, events)).status).toBe(202);
    expect(seqsOf(await batch.untilMessages(100))).toEqual(range(1, 100));
    expect(seqsOf(await plain.untilMessages(100))).toEqual(range(1, 100));

    const frames = eventFrames(batch);
    for (const { bytes } of frames) expect(bytes).toBeLessThanOrEqual(MAX_FRAME_BYTES);
    const coalesced = frames.filter(({ frame }) => frame.type === "messages");
    expect(coalesced.length).toBeGreaterThan(0);
    for (const { frame } of coalesced) expect(frame.messages.length).toBeGreaterThan(1);
    // As few frames as the byte bound allows: each one but the last would overflow with the next event.
    for (let k = 0; k + 1 < frames.length; k++) {
      const next = frames[k + 1]!.frame;
      const nextEvent = next.type === "message" ? next.message : next.messages[0];
      expect(frames[k]!.bytes + utf8(JSON.stringify(nextEvent)) + 1).toBeGreaterThan(MAX_FRAME_BYTES);
    }
    expect(eventFrames(plain).length).toBe(100);
    batch.close();
    plain.close();
  });

  it("a coalesced frame carries at most 256 events; an event over 64 KiB goes alone, as a message frame", () => {
    const event = (seq: number, text: string) => {
      const envelope = { room: "r", seq, id: `id-${seq}`, event: "e", data: { text }, ts: "2026-01-01T00:00:00.000Z" };
      return new EncodedEvent(seq, JSON.stringify(envelope), envelope);
    };
    const small = new EventRun(range(1, 600).map((seq) => event(seq, "x")));
    const frames = small.batchFrames;
    expect(frames.map((f) => JSON.parse(f.text).messages.length)).toEqual([MAX_FRAME_EVENTS, MAX_FRAME_EVENTS, 600 - 2 * MAX_FRAME_EVENTS]);
    expect(frames.map((f) => f.lastSeq)).toEqual([256, 512, 600]);
    for (const frame of frames) expect(frame.bytes).toBe(utf8(frame.text));
    expect(frames.flatMap((f) => JSON.parse(f.text).messages.map((m: any) => m.seq))).toEqual(range(1, 600));

    const big = new EventRun([event(1, "a"), event(2, "b".repeat(70_000)), event(3, "c"), event(4, "d")]);
    const parts = big.batchFrames.map((f) => JSON.parse(f.text));
    expect(parts.map((p) => p.type)).toEqual(["message", "message", "messages"]);
    expect(parts[2].messages.map((m: any) => m.seq)).toEqual([3, 4]);
    expect(big.chunks().map((run) => run.events.map((e) => e.seq))).toEqual([[1], [2], [3, 4]]);
  });

  it("sends accepted together are answered with one acks frame: every clientId once, in order, before the messages", async () => {
    const room = uniqueRoom("coalesce-acks");
    const sender = await openSocket(room, "sender", "&batch=1");
    const plainSender = await openSocket(room, "plain-sender");
    const ids = range(1, 15).map((i) => `c-${i}`);
    // A burst as the runtime hands it to the room when frames arrive together: one message event after another, no turn between.
    await runInDurableObject(roomStub(room), (instance: ChatRoom) => {
      const sockets = (instance as any).ctx.getWebSockets() as WebSocket[];
      const batchSocket = sockets.find((ws) => ws.deserializeAttachment().batch);
      const plainSocket = sockets.find((ws) => !ws.deserializeAttachment().batch);
      for (const clientId of ids) {
        void instance.webSocketMessage(batchSocket!, JSON.stringify({ type: "send", data: { text: clientId }, clientId }));
        void instance.webSocketMessage(plainSocket!, JSON.stringify({ type: "send", data: { text: clientId }, clientId: `p-${clientId}` }));
      }
    });
    await sender.untilMessages(30);
    await plainSender.untilMessages(30);
    for (const socket of [sender, plainSender]) {
      socket.send({ type: "ping" });
      await socket.next((f) => f.type === "pong");
    }

    const replies = sender.frames.filter((f) => f.type === "ack" || f.type === "acks");
    const acked = replies.flatMap((f) => (f.type === "ack" ? [f] : f.acks));
    expect(acked.map((a: any) => a.clientId)).toEqual(ids);
    // The first frame of a burst is handled at once, the rest together: their acks share one frame.
    expect(replies.map((f) => (f.type === "ack" ? 1 : f.acks.length))).toEqual([1, ids.length - 1]);
    // Each ack names the seq and id its message arrived with, and came before it.
    const bySeq = new Map(sender.messages().map((m) => [m.seq, m]));
    for (const ack of acked) expect(bySeq.get(ack.seq)).toMatchObject({ id: ack.id, clientId: ack.clientId });
    const position = (match: (f: any) => boolean) => sender.frames.findIndex(match);
    for (const ack of acked) {
      const ackAt = position((f) => f === ack || (f.type === "acks" && f.acks.includes(ack)));
      const messageAt = position((f) => (f.type === "message" ? f.message.seq === ack.seq : f.type === "messages" && f.messages.some((m: any) => m.seq === ack.seq)));
      expect(ackAt).toBeLessThan(messageAt);
    }
    // A socket without batch=1 gets one ack frame per send and one message frame per event, as before.
    const plainReplies = plainSender.frames.filter((f) => f.type === "ack" || f.type === "acks");
    expect(plainReplies.map((f) => `${f.type}:${f.clientId}`)).toEqual(ids.map((id) => `ack:p-${id}`));
    expect(eventFrames(plainSender).length).toBe(30);
    sender.close();
    plainSender.close();
  });

  it("a batch=1 socket's sends answered one by one keep every clientId once, in order", async () => {
    const room = uniqueRoom("coalesce-acks-live");
    const sender = await openSocket(room, "sender", "&batch=1");
    const ids = range(1, 15).map((i) => `c-${i}`);
    for (const clientId of ids) sender.send({ type: "send", data: { text: clientId }, clientId });
    await sender.untilMessages(ids.length);
    sender.send({ type: "ping" });
    await sender.next((f) => f.type === "pong");
    const acked = sender.frames.filter((f) => f.type === "ack" || f.type === "acks").flatMap((f) => (f.type === "ack" ? [f] : f.acks));
    expect(acked.map((a: any) => a.clientId)).toEqual(ids);
    expect(acked.map((a: any) => a.seq)).toEqual(range(1, ids.length));
    sender.close();
  });

  it("a batch=1 socket that stops acking is closed with 1013 by its coalesced frames' bytes, and resumes gap-free with after=", async () => {
    const room = uniqueRoom("coalesce-flow");
    const slow = await openSocket(room, "slow", "&batch=1");
    let sinceAck = 0;
    const sizes: number[] = [];
    slow.ws.addEventListener("message", (event) => {
      const bytes = utf8(String(event.data));
      sinceAck += bytes;
      sizes.push(bytes);
    });
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      slow.ws.addEventListener("close", (event) => {
        try {
          slow.ws.close(1000, "bye");
        } catch {
          // already closed
        }
        resolve({ code: event.code, reason: event.reason });
      }),
    );
    slow.send({ type: "ack", seq: 0 }); // opts in
    slow.send({ type: "ping" });
    await slow.next((f) => f.type === "pong");
    sinceAck = 0;
    sizes.length = 0;

    const total = 40; // about 560 KiB, more than twice the cap
    const bulk = range(1, total).map((i) => ({ event: "bulk", data: { i, text: "x".repeat(14_000) } }));
    expect((await notifyMany(room, bulk)).status).toBe(202);
    expect(await closed).toEqual({ code: CLOSE_SLOW_CONSUMER, reason: SLOW_CONSUMER_REASON });
    // Closed by the frame that took it over the cap, not before.
    expect(sinceAck).toBeGreaterThan(CAP);
    expect(sinceAck - sizes.at(-1)!).toBeLessThanOrEqual(CAP);
    expect(slow.frames.some((f) => f.type === "messages")).toBe(true);
    const had = seqsOf(slow.messages()).at(-1)!;
    expect(seqsOf(slow.messages())).toEqual(range(1, had));
    expect(had).toBeLessThan(total);

    const resumed = await openSocket(room, "slow", `&batch=1&after=${had}`);
    expect(seqsOf(await resumed.untilMessages(total - had))).toEqual(range(had + 1, total));
    resumed.send({ type: "ping" });
    await resumed.next((f) => f.type === "pong");
    expect(seqsOf(resumed.messages())).toEqual(range(had + 1, total));
    // The replay was coalesced too.
    expect(eventFrames(resumed).length).toBeLessThan(total - had);
    resumed.close();
  });

  it("batch=1 survives hibernation", async () => {
    const room = uniqueRoom("coalesce-hib");
    const socket = await openSocket(room, "sleeper", "&batch=1");
    await evictDurableObject(roomStub(room));
    expect((await notifyMany(room, range(1, 5).map((i) => ({ event: "after-wake", data: { i } })))).status).toBe(202);
    expect(seqsOf(await socket.untilMessages(5))).toEqual(range(1, 5));
    expect(socket.frames.filter((f) => f.type === "messages").map((f) => f.messages.length)).toEqual([5]);
    expect((await roomStatus(room)).subscribers).toBe(1);
    socket.close();
  });

  it("batch must be 0 or 1", async () => {
    const response = await TestSocket.open(uniqueRoom("coalesce-q"), await tokenFor("q"), "&batch=yes").catch((error: Error) => error);
    expect(String(response)).toMatch(/400.*batch: must be 0 or 1/);
  });
});
