/**
 * The client library over a real WebSocket (the shared `wrangler dev`) with
 * coalesced frames (SPEC §4, `batch=1`): it opts in, unpacks `messages` and
 * `acks` frames, and its listeners see one `message` per envelope, in order,
 * exactly as with single frames.
 */
import { afterEach, describe, expect, inject, it } from "vitest";
import { postJson, tokenFor, WsClient } from "./clients";
import { eventually, expectGapFree, hookedWebSocket, open, waitConnected, type Recorded } from "./client-helpers";
import { DEFAULT_SECRETS } from "./server";

const base = inject("serverUrl");
const rooms: Recorded[] = [];
const track = (r: Recorded) => (rooms.push(r), r);
let counter = 0;
const newRoom = (label: string) => `coalesced-${label}-${Date.now()}-${counter++}`;

afterEach(() => {
  for (const r of rooms.splice(0)) r.room.close();
});

/** A WebSocket that records the URL it opened and the type of every frame the server sent. */
function recordingWebSocket() {
  const seen = { urls: [] as string[], frames: [] as any[] };
  const Impl = hookedWebSocket({
    opened: (url) => seen.urls.push(url),
    incoming: (data, deliver) => {
      if (typeof data === "string" && data.startsWith("{")) seen.frames.push(JSON.parse(data));
      deliver(data);
    },
  });
  return { Impl, seen };
}

describe("client library: coalesced WebSocket frames", () => {
  it("opts in with batch=1 and emits one message per envelope of a coalesced frame, in order", async () => {
    const room = newRoom("messages");
    const { Impl, seen } = recordingWebSocket();
    const reader = track(open(base, room, { token: await tokenFor("reader"), transports: ["websocket"], WebSocket: Impl }));
    await waitConnected(reader, "websocket");
    expect(new URL(seen.urls[0]!).searchParams.get("batch")).toBe("1");

    // 100 events accepted in one request leave the room together: coalesced frames.
    const events = Array.from({ length: 100 }, (_, i) => ({ event: "tick", data: { text: `t${i + 1}` } }));
    const response = await postJson(`${base}/rooms/${room}/notify`, { events }, DEFAULT_SECRETS.NOTIFY_SECRET);
    expect(response.status).toBe(202);
    await eventually(() => reader.messages.length === 100, "reader gets 100 messages");
    expect(reader.seqs()).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(reader.texts()).toEqual(events.map((e) => e.data.text));
    expect(reader.room.seq).toBe(100);
    const coalesced = seen.frames.filter((f) => f.type === "messages");
    expect(coalesced.length).toBeGreaterThan(0);
    expect(seen.frames.filter((f) => f.type === "message" || f.type === "messages").length).toBeLessThan(100);

    // A lone event afterwards still arrives, and nothing repeats.
    await postJson(`${base}/rooms/${room}/notify`, { event: "tick", data: { text: "last" } }, DEFAULT_SECRETS.NOTIFY_SECRET);
    await eventually(() => reader.messages.length === 101, "reader gets the lone event");
    expectGapFree(reader.seqs());
    expect(reader.errors).toEqual([]);
  });

  it("the library's sends (one in flight at a time, to keep their order) are each acknowledged over a batch=1 socket", async () => {
    const room = newRoom("sends");
    const alice = track(open(base, room, { token: await tokenFor("alice"), transports: ["websocket"] }));
    const bob = track(open(base, room, { token: await tokenFor("bob"), transports: ["websocket"] }));
    await waitConnected(alice, "websocket");
    await waitConnected(bob, "websocket");
    const acks = await Promise.all(Array.from({ length: 15 }, (_, i) => alice.room.send(`m${i + 1}`)));
    expect(acks.map((a) => a.seq)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    for (const r of [alice, bob]) {
      await eventually(() => r.messages.length === 15, `${r.room.user?.id} gets 15 messages`);
      expectGapFree(r.seqs());
      expect(r.texts()).toEqual(Array.from({ length: 15 }, (_, i) => `m${i + 1}`));
    }
    expect(alice.errors).toEqual([]);
  });

  it("a pipelining batch=1 socket gets every clientId acknowledged once, in order, acks before their messages", async () => {
    const room = newRoom("pipeline");
    const socket = await WsClient.open(`${base.replace(/^http/, "ws")}/rooms/${room}/ws?token=${await tokenFor("piper")}&batch=1`);
    await socket.until((frames) => frames.some((f) => f?.type === "welcome"), "welcome");
    const ids = Array.from({ length: 15 }, (_, i) => `p-${i + 1}`);
    for (const clientId of ids) socket.send({ type: "send", data: { text: clientId }, clientId });
    await socket.untilMessages(15);
    const replies = socket.frames.filter((f) => f?.type === "ack" || f?.type === "acks");
    const acked = replies.flatMap((f) => (f.type === "ack" ? [f] : f.acks));
    expect(acked.map((a: any) => a.clientId)).toEqual(ids);
    expect(acked.map((a: any) => a.seq)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    const firstMessage = socket.frames.findIndex((f) => f?.type === "message" || f?.type === "messages");
    expect(socket.frames.findIndex((f) => f?.type === "ack" || f?.type === "acks")).toBeLessThan(firstMessage);
    console.info(`pipelined burst over wrangler dev: 15 sends answered in ${replies.length} frames, delivered in ${socket.frames.filter((f) => f?.type === "message" || f?.type === "messages").length}`);
    socket.close();
  });
});
