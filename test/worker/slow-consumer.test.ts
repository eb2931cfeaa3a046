/**
 * Issue 9 §3, slow consumers, inside workerd (the end-to-end side, with real
 * TCP clients that stop reading, is test/e2e/slow-consumer.test.ts):
 *
 *   - what the runtime tells the room about a WebSocket's unsent frames:
 *     nothing. workerd has no `WebSocket.bufferedAmount`, so the 4 MiB check
 *     in objects/room/websocket-subscriber.ts cannot fire here; this test
 *     pins that fact, and fails the day the runtime starts reporting it
 *     (clients' acknowledgements bound the backlog instead:
 *     websocket-flow-control.test.ts);
 *   - an SSE client catching up on a backlog far larger than the stream's
 *     1 MiB unsent cap gets all of it: the replay goes at the client's pace,
 *     from storage, instead of queueing the backlog and being cut for it.
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { MAX_BUFFERED_BYTES } from "../../objects/room/websocket-subscriber";
import { call, notify, tokenFor, TestSocket } from "./helpers";
import { flushRoom, range, roomStub, uniqueRoom } from "./support";

/** About 14 KiB of JSON per event. */
const bulk = (i: number) => ({ event: "bulk", data: { i, text: "x".repeat(14_000) } });

describe("slow consumers in the Workers runtime", () => {
  it("workerd reports no bufferedAmount for the room's WebSockets, so the room cannot see a backlog", async () => {
    const room = uniqueRoom("buffered");
    const socket = await TestSocket.open(room, await tokenFor("reader"));
    await socket.next((f) => f.type === "welcome");
    // More than MAX_BUFFERED_BYTES handed to the socket in one turn, without the client reading in between.
    await runInDurableObject(roomStub(room), (_, state) => {
      const [server] = state.getWebSockets();
      const chunk = "y".repeat(64 * 1024);
      for (let i = 0; i < (MAX_BUFFERED_BYTES / chunk.length) * 2; i++) server!.send(chunk);
      expect("bufferedAmount" in server!).toBe(false);
      expect((server as { bufferedAmount?: number }).bufferedAmount).toBeUndefined();
    });
    socket.close();
  });

  // 150 notifies, a D1 flush and a 2 MiB paced replay: seconds alone, 30 s on a machine at load 14, so a roomier safety net.
  it.for([
    { heartbeats: false, name: "an SSE resume of a backlog far over the 1 MiB cap is paced, not cut: every event arrives once, in order" },
    // A heartbeat written while the replay waited for its client stalled the replay for good.
    { heartbeats: true, name: "the same with heartbeats due all through the replay" },
  ])("$name", { timeout: 120_000 }, async ({ heartbeats }) => {
    const room = uniqueRoom("sse-backlog");
    const total = 150; // about 2 MiB, most of it only in D1 once flushed (tests keep a 20-event tail)
    for (let i = 1; i <= total; i++) expect((await notify(room, bulk(i))).status).toBe(202);
    await flushRoom(room);

    const stream = await call(`/rooms/${room}/events?after=0&token=${await tokenFor("reader")}`);
    expect(stream.status).toBe(200);
    const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    const ids = () => [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
    for (let reads = 0; ids().length < total; reads++) {
      const { done, value } = await reader.read();
      if (done) break; // cut by the server: the assertion below says so
      text += value;
      if (reads % 8 === 0) await scheduler.wait(1); // a reader a little slower than the room
      if (heartbeats && reads % 4 === 0) await runInDurableObject(roomStub(room), (instance) => (instance as unknown as { streams: Set<{ heartbeat(): void }> }).streams.forEach((stream) => stream.heartbeat()));
    }
    expect(ids()).toEqual(range(1, total));
    await reader.cancel();
  });
});
