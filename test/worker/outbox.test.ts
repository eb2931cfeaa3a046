/**
 * SPEC §1 / ENGINEERING "D1 outbox": accepted events are copied to D1 by the
 * room's alarm. While D1 fails the room keeps accepting and serving events
 * and keeps retrying; once D1 is back every event is in D1 exactly once,
 * however many flushes ran, failed, or half-succeeded.
 */
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { ChatRoom } from "../../objects/ChatRoom";
import { notify, postJson, tokenFor, TestSocket } from "./helpers";
import { d1LastSeq, d1Messages, flushRoom, get, range, roomStatus, roomStub, seqsOf, uniqueRoom } from "./support";

type Failure = "write-fails" | "reply-lost" | "all-fail";

/**
 * Swaps the D1 binding the room instance writes through for one that fails:
 *  - write-fails: batch() throws before touching D1 (D1 down);
 *  - reply-lost:  batch() commits, then throws (the answer never came back);
 *  - all-fail:    reads fail as well.
 * The room's D1Store is shared by the outbox and history, so this is what a
 * real outage looks like from inside the object.
 */
function breakD1(room: string, failure: Failure): Promise<void> {
  return runInDurableObject(roomStub(room), (instance: ChatRoom) => {
    const store = (instance as any).outbox.d1;
    const real: D1Database = store.realDb ?? store.db;
    store.realDb = real;
    store.db = {
      prepare: (sql: string) => {
        if (failure === "all-fail") throw new Error("D1 unavailable (injected)");
        return real.prepare(sql);
      },
      batch: async (statements: D1PreparedStatement[]) => {
        if (failure === "reply-lost") await real.batch(statements);
        throw new Error("D1 unavailable (injected)");
      },
    };
  });
}

function repairD1(room: string): Promise<void> {
  return runInDurableObject(roomStub(room), (instance: ChatRoom) => {
    const store = (instance as any).outbox.d1;
    if (store.realDb) store.db = store.realDb;
  });
}

function localSeqs(room: string): Promise<number[]> {
  return runInDurableObject(roomStub(room), (_, state) =>
    state.storage.sql.exec<{ seq: number }>("SELECT seq FROM events ORDER BY seq").toArray().map((r) => r.seq),
  );
}

/** Sends `count` events alternating HTTP chat messages (two users) and notifies; returns the envelopes. */
async function accept(room: string, count: number, from = 0): Promise<any[]> {
  const tokens = [await tokenFor("alice"), await tokenFor("bob")];
  const out: any[] = [];
  for (let i = from; i < from + count; i++) {
    const response = i % 3 === 2
      ? await notify(room, { event: "system", data: { i } })
      : await postJson(`/rooms/${room}/messages`, { data: { text: `m${i}` }, clientId: `c${i}` }, tokens[i % 3]!);
    expect([201, 202]).toContain(response.status);
    out.push(((await response.json()) as any).message);
  }
  return out;
}

/** D1 holds each of 1..n exactly once, each row being the envelope clients were given. */
async function expectD1Holds(room: string, envelopes: any[]): Promise<void> {
  const rows = await d1Messages(room);
  expect(rows.map((r) => r.seq)).toEqual(range(1, envelopes.length));
  expect(new Set(rows.map((r) => r.id)).size).toBe(rows.length);
  for (const row of rows) {
    const sent = envelopes[row.seq - 1];
    expect(JSON.parse(row.envelope)).toEqual(sent);
    expect(row).toMatchObject({ id: sent.id, event: sent.event, from_id: sent.from?.id ?? null, client_id: sent.clientId ?? null });
    expect(JSON.parse(row.data)).toEqual(sent.data);
  }
  expect(await d1LastSeq(room)).toBe(envelopes.length);
}

describe("D1 outbox", () => {
  // The normal path: a flush writes every event once and records the room's last seq.
  it("flushes accepted events to D1 with their envelopes", async () => {
    const room = uniqueRoom("outbox");
    const sent = await accept(room, 12);
    const status = await flushRoom(room);
    expect(status.outbox).toMatchObject({ pending: 0, flushedSeq: 12, consecutiveFailures: 0 });
    await expectD1Holds(room, sent);
  });

  // A D1 outage over several flushes loses nothing, trims nothing, keeps the alarm armed,
  // and once D1 is back (after a flush whose reply was lost) nothing is stored twice.
  it("survives a D1 outage over several flushes: nothing lost, nothing duplicated", async () => {
    const room = uniqueRoom("outbox");
    await breakD1(room, "write-fails"); // before the first event, so no flush can slip through
    const sent = await accept(room, 30);

    // Several flushes run while D1 is down; each one fails and re-arms the alarm.
    for (let i = 0; i < 3; i++) await runDurableObjectAlarm(roomStub(room));
    let status = await roomStatus(room);
    expect(status.seq).toBe(30);
    expect(status.trimmedSeq).toBe(0); // nothing leaves the object before D1 holds it
    expect(status.outbox).toMatchObject({ pending: 30, flushedSeq: 0 });
    expect(status.outbox.consecutiveFailures).toBeGreaterThanOrEqual(3);
    expect(status.outbox.lastError).toContain("injected");
    expect(await runInDurableObject(roomStub(room), (_, state) => state.storage.getAlarm())).not.toBeNull();
    expect(await d1Messages(room)).toEqual([]);
    expect(await localSeqs(room)).toEqual(range(1, 30));

    // The room keeps accepting and serving while D1 is down.
    sent.push(...(await accept(room, 5, 30)));
    const token = await tokenFor("reader");
    const history = (await (await get(`/rooms/${room}/messages?after=0`, token)).json()) as any;
    expect(history.messages).toEqual(sent);
    const socket = await TestSocket.open(room, token, "&after=0");
    expect(seqsOf(await socket.untilMessages(35))).toEqual(range(1, 35));
    socket.close();

    // D1 commits but the reply is lost: the outbox must assume failure and retry.
    await breakD1(room, "reply-lost");
    expect(await runDurableObjectAlarm(roomStub(room))).toBe(true);
    expect((await roomStatus(room)).outbox).toMatchObject({ pending: 35, flushedSeq: 0 });
    expect((await d1Messages(room)).length).toBe(35);

    // D1 is back: the retry rewrites the same rows, and D1 holds each event exactly once.
    await repairD1(room);
    status = await flushRoom(room);
    expect(status).toMatchObject({ seq: 35, trimmedSeq: 15, outbox: { pending: 0, flushedSeq: 35, consecutiveFailures: 0 } });
    expect(status.outbox.lastError).toBeUndefined();
    await expectD1Holds(room, sent);
    expect(await localSeqs(room)).toEqual(range(16, 35));

    // History now crosses into D1 and is unchanged.
    const after = (await (await get(`/rooms/${room}/messages?after=0`, token)).json()) as any;
    expect(after.messages).toEqual(sent);
  });

  // Running the flush again, even over events D1 already holds, never duplicates. Also: a room
  // that wakes with unflushed events and no alarm armed flushes them without waiting for new traffic.
  it("repeated flushes, including a full re-flush, never duplicate", async () => {
    const room = uniqueRoom("outbox");
    const sent = await accept(room, 25);
    await flushRoom(room);
    await runInDurableObject(roomStub(room), async (instance: ChatRoom) => {
      await instance.alarm();
      await instance.alarm();
    });
    await expectD1Holds(room, sent);

    // Forget the flush position (as if the object had lost it) and flush everything it still has again.
    await runInDurableObject(roomStub(room), (_, state) => void state.storage.sql.exec("UPDATE meta SET value = 0 WHERE key = 'flushed_seq'"));
    await runInDurableObject(roomStub(room), (_, state) => state.storage.deleteAlarm());
    await evictDurableObject(roomStub(room));
    expect((await roomStatus(room)).outbox.pending).toBe(25);
    const status = await flushRoom(room);
    expect(status.outbox).toMatchObject({ pending: 0, flushedSeq: 25 });
    await expectD1Holds(room, sent);
  });

  // The outbox survives eviction: events accepted during an outage are flushed by the next instance.
  it("events pending at eviction are flushed by the next instance", async () => {
    const room = uniqueRoom("outbox");
    await breakD1(room, "write-fails");
    const sent = await accept(room, 8);
    await runDurableObjectAlarm(roomStub(room));
    expect((await roomStatus(room)).outbox.pending).toBe(8);
    await evictDurableObject(roomStub(room)); // the new instance has a healthy D1 binding
    const status = await flushRoom(room);
    expect(status.outbox).toMatchObject({ pending: 0, flushedSeq: 8 });
    await expectD1Holds(room, sent);
  });

  // Events accepted while a flush is waiting on D1 are flushed by a following run, not forgotten.
  it("events accepted while a flush is in flight are flushed too", async () => {
    const room = uniqueRoom("outbox");
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const inFlight = new Promise<void>((resolve) => (entered = resolve));
    await runInDurableObject(roomStub(room), (instance: ChatRoom) => {
      const store = (instance as any).outbox.d1;
      const real: D1Database = store.db;
      store.db = {
        prepare: (sql: string) => real.prepare(sql),
        batch: async (statements: D1PreparedStatement[]) => {
          entered();
          await gate;
          store.db = real;
          return real.batch(statements);
        },
      };
    });
    const sent = await accept(room, 3);
    const forced = runDurableObjectAlarm(roomStub(room)); // or the runtime's own alarm got there first
    await inFlight; // a flush is now stuck inside D1
    sent.push(...(await accept(room, 2, 3)));
    release();
    await forced;
    const status = await flushRoom(room);
    expect(status.outbox).toMatchObject({ pending: 0, flushedSeq: 5 });
    await expectD1Holds(room, sent);
  });

  // When resuming needs D1 and D1 cannot answer, the socket is closed rather than given a gap.
  it("a resume that needs D1 during an outage closes the socket instead of skipping events", async () => {
    const room = uniqueRoom("outbox");
    await accept(room, 30);
    expect((await flushRoom(room)).trimmedSeq).toBe(10);
    await breakD1(room, "all-fail");
    const socket = await TestSocket.open(room, await tokenFor("reader"), "&after=0");
    const closed = new Promise<number>((resolve) => socket.ws.addEventListener("close", (e) => resolve(e.code)));
    expect(await closed).toBe(1011);
    expect(socket.messages()).toEqual([]);
    await repairD1(room);
  });
});
