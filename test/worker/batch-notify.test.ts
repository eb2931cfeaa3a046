/**
 * Many events into one room in one request (SPEC §5):
 * `POST /rooms/:room/notify` with `{"events":[…]}`, 1 to 100 items, all
 * accepted or none, consecutive seqs, idempotency per item.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { notify, postJson, TestSocket, tokenFor } from "./helpers";
import { d1Messages, expectError, flushRoom, range, roomStatus, seqsOf, uniqueRoom } from "./support";

const items = (count: number, extra: (i: number) => Record<string, unknown> = () => ({})) =>
  range(1, count).map((i) => ({ event: "order.updated", data: { i }, ...extra(i) }));

async function accepted(response: Response, status = 202): Promise<any[]> {
  expect(response.status).toBe(status);
  return ((await response.json()) as any).messages;
}

describe("POST /rooms/:room/notify with events", () => {
  it("accepts 100 events with consecutive seqs, in the order given, stored and delivered once", async () => {
    const room = uniqueRoom("bnotify");
    const socket = await TestSocket.open(room, await tokenFor("watcher"));
    await socket.next((f) => f.type === "welcome");
    await notify(room, { event: "first", data: {} });
    const messages = await accepted(await notify(room, { events: items(100, (i) => (i === 3 ? { from: { id: "ops", name: "Ops" } } : {})) }));
    expect(seqsOf(messages)).toEqual(range(2, 101));
    expect(messages.map((m) => m.data.i)).toEqual(range(1, 100));
    expect(messages[2].from).toEqual({ id: "ops", name: "Ops" });
    expect("from" in messages[0]).toBe(false);
    expect(new Set(messages.map((m) => m.id)).size).toBe(100);

    expect(seqsOf(await socket.untilMessages(101))).toEqual(range(1, 101));
    expect(socket.messages().slice(1)).toEqual(messages);
    await flushRoom(room);
    expect(seqsOf(await d1Messages(room))).toEqual(range(1, 101));
    socket.close();
  });

  it("one bad item: 400 invalid_body naming its index, and nothing is stored", async () => {
    const room = uniqueRoom("bnotify-bad");
    await notify(room, { event: "first", data: {} });
    const bad = items(10);
    bad[7] = { event: "no spaces allowed", data: { i: 8 } };
    expect(await expectError(await notify(room, { events: bad }), 400, "invalid_body")).toMatch(/^events\.7\.event: /);
    const badData = items(10);
    (badData[4] as any).data = [1, 2];
    expect(await expectError(await notify(room, { events: badData }), 400, "invalid_body")).toMatch(/^events\.4\.data: /);
    const chat = items(3);
    chat[2] = { event: "message", data: {} } as any;
    expect(await expectError(await notify(room, { events: chat }), 400, "invalid_body")).toMatch(/^events\.2: data\.text: /);
    expect((await roomStatus(room)).seq).toBe(1);
  });

  it("an item over MAX_MESSAGE_BYTES (checked by the room) is refused with its index, nothing stored", async () => {
    const room = uniqueRoom("bnotify-size");
    const limit = Number(env.MAX_MESSAGE_BYTES ?? 16384);
    const big = items(5);
    big[3] = { event: "big", data: { text: "x".repeat(limit) } } as any;
    const message = await expectError(await notify(room, { events: big }), 413, "payload_too_large");
    expect(message).toMatch(/^events\.3\.data is \d+ bytes/);
    expect((await roomStatus(room)).seq).toBe(0);
  });

  it("refuses an empty list, more than 100 items, and a single event's body past its own cap", async () => {
    const room = uniqueRoom("bnotify-bounds");
    expect(await expectError(await notify(room, { events: [] }), 400, "invalid_body")).toMatch(/^events: /);
    expect(await expectError(await notify(room, { events: items(101) }), 400, "invalid_body")).toMatch(/^events: .*100/);
    const limit = Number(env.MAX_MESSAGE_BYTES ?? 16384);
    await expectError(await notify(room, { event: "one", data: { text: "x".repeat(limit * 3) } }), 413, "payload_too_large");
    expect((await roomStatus(room)).seq).toBe(0);
  });

  it("a key used before answers its original envelope and takes no new seq; a key repeated in the batch is one event", async () => {
    const room = uniqueRoom("bnotify-idem");
    const socket = await TestSocket.open(room, await tokenFor("watcher"));
    await socket.next((f) => f.type === "welcome");
    const [original] = await accepted(await notify(room, { events: [{ event: "a", data: { n: 1 }, idempotencyKey: "k-1" }] }));
    expect(original.seq).toBe(1);

    const messages = await accepted(
      await notify(room, {
        events: [
          { event: "b", data: { n: 2 }, idempotencyKey: "k-2" },
          { event: "a", data: { n: 1 }, idempotencyKey: "k-1" }, // used before: the original
          { event: "c", data: { n: 3 } },
          { event: "b", data: { n: 99 }, idempotencyKey: "k-2" }, // repeated in this batch: the same event as its first use
        ],
      }),
    );
    expect(messages[1]).toEqual(original);
    expect(messages[3]).toEqual(messages[0]);
    expect(seqsOf(messages)).toEqual([2, 1, 3, 2]);

    // Across batches and across the single form: the same envelopes, 200 when nothing is new.
    const again = await accepted(await notify(room, { events: [{ event: "b", data: {}, idempotencyKey: "k-2" }, { event: "a", data: {}, idempotencyKey: "k-1" }] }), 200);
    expect(again).toEqual([messages[0], original]);
    const single = await notify(room, { event: "b", data: {}, idempotencyKey: "k-2" });
    expect(single.status).toBe(200);
    expect(((await single.json()) as any).message).toEqual(messages[0]);

    expect((await roomStatus(room)).seq).toBe(3);
    const marker = await notify(room, { event: "marker", data: {} });
    expect(marker.status).toBe(202);
    expect(seqsOf(await socket.untilMessages(4))).toEqual([1, 2, 3, 4]);
    socket.close();
  });

  it("is authenticated like notify", async () => {
    const room = uniqueRoom("bnotify-auth");
    await expectError(await postJson(`/rooms/${room}/notify`, { events: items(2) }), 401, "missing_token");
    await expectError(await postJson(`/rooms/${room}/notify`, { events: items(2) }, "not-the-secret"), 401, "invalid_token");
    expect((await roomStatus(room)).seq).toBe(0);
  });
});
