/**
 * The D1 counters of GET /rooms/:room/status (`outbox.d1Batches`,
 * `d1Statements`, `d1Events`): what an operator, and `npm run bench`, read to
 * see how many D1 round trips the room's events took.
 */
import { describe, expect, it } from "vitest";
import { d1Messages, flushRoom, roomStatus, uniqueRoom } from "./support";
import { notify } from "./helpers";

interface D1Counters {
  d1Batches: number;
  d1Statements: number;
  d1Events: number;
}

async function counters(room: string): Promise<D1Counters> {
  const { outbox } = (await roomStatus(room)) as unknown as { outbox: D1Counters };
  return { d1Batches: outbox.d1Batches, d1Statements: outbox.d1Statements, d1Events: outbox.d1Events };
}

async function publish(room: string, from: number, count: number): Promise<void> {
  const responses = await Promise.all(Array.from({ length: count }, (_, i) => notify(room, { event: "counted", data: { i: from + i } })));
  expect(responses.map((r) => r.status)).toEqual(responses.map(() => 202));
}

describe("D1 counters in the room status", () => {
  it("start at zero in a new room", async () => {
    expect(await counters(uniqueRoom("counters"))).toEqual({ d1Batches: 0, d1Statements: 0, d1Events: 0 });
  });

  it("count every event written to D1 once, and the round trips and statements that carried them", async () => {
    const room = uniqueRoom("counters");
    await publish(room, 0, 120);
    await flushRoom(room);
    const first = await counters(room);
    expect((await d1Messages(room)).length).toBe(120);
    expect(first.d1Events).toBe(120);
    expect(first.d1Batches).toBeGreaterThanOrEqual(1);
    expect(first.d1Batches).toBeLessThanOrEqual(120);
    // Each round trip carries one insert for its events and the room's last_seq upsert.
    expect(first.d1Statements).toBeGreaterThanOrEqual(2 * first.d1Batches);

    await publish(room, 120, 5);
    await flushRoom(room);
    const second = await counters(room);
    expect(second.d1Events).toBe(125);
    expect(second.d1Batches).toBeGreaterThan(first.d1Batches);
    expect(second.d1Statements).toBeGreaterThan(first.d1Statements);
  });
});
