/**
 * SPEC §4: resuming from a seq returns everything after it, gap-free, whether
 * the events are still in the room object's tail or only in D1. Tests keep a
 * tail of 20 events (ROOM_TAIL_EVENTS), so a 50-event room after its flush
 * holds 31..50 locally and 1..30 only in D1.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { notify, tokenFor, TestSocket } from "./helpers";
import { flushRoom, get, range, roomStub, seedEvents, seqsOf, uniqueRoom } from "./support";

const TAIL = Number(env.ROOM_TAIL_EVENTS);
const SEEDED = 50;
const TRIMMED = SEEDED - TAIL;

let room: string;
let token: string;
/** The envelopes as notify answered them, by seq - 1. */
let sent: any[];

beforeAll(async () => {
  room = uniqueRoom("resume");
  token = await tokenFor("reader");
  sent = await seedEvents(room, SEEDED);
  const status = await flushRoom(room);
  expect(status).toMatchObject({ seq: SEEDED, trimmedSeq: TRIMMED, outbox: { pending: 0, flushedSeq: SEEDED } });
});

async function page(query: string): Promise<{ messages: any[]; seq: number }> {
  const response = await get(`/rooms/${room}/messages?${query}`, token);
  expect(response.status).toBe(200);
  return response.json();
}

describe("the boundary", () => {
  // The object really has trimmed 1..30: those can only come from D1.
  it("the object keeps only the tail; D1 has everything", async () => {
    const local = await runInDurableObject(roomStub(room), (_, state) =>
      state.storage.sql.exec<{ seq: number }>("SELECT seq FROM events ORDER BY seq").toArray().map((r) => r.seq),
    );
    expect(local).toEqual(range(TRIMMED + 1, SEEDED));
    const { results } = await env.DB.prepare("SELECT seq FROM messages WHERE room = ? ORDER BY seq").bind(room).all<{ seq: number }>();
    expect(results.map((r) => r.seq)).toEqual(range(1, SEEDED));
  });
});

describe("GET messages", () => {
  // after=0 returns the whole log, D1 part and tail part, identical to what notify answered.
  it("after=0 returns 1..50 across the boundary, envelopes unchanged", async () => {
    const { messages, seq } = await page("after=0");
    expect(seq).toBe(SEEDED);
    expect(messages).toEqual(sent);
  });

  // Windows entirely in D1, straddling the boundary, and entirely in the tail.
  it.each([
    ["after=10&limit=15", range(11, 25)],
    ["after=25&limit=10", range(26, 35)],
    ["after=30&limit=5", range(31, 35)],
    ["after=29&limit=2", range(30, 31)],
    ["after=40", range(41, 50)],
    ["after=50", []],
    ["after=999", []],
    ["before=31&limit=5", range(26, 30)],
    ["before=40&limit=15", range(25, 39)],
    ["before=33&limit=5", range(28, 32)],
    ["before=10", range(1, 9)],
    ["before=2", [1]],
    ["before=1000&limit=3", range(48, 50)],
    ["before=40&after=25", range(26, 39)],
    ["before=40&after=35", range(36, 39)],
    ["limit=5", range(46, 50)],
    ["", range(1, 50)],
  ])("?%s", async (query, expected) => {
    const { messages, seq } = await page(query);
    expect(seqsOf(messages)).toEqual(expected);
    expect(seq).toBe(SEEDED);
    for (const m of messages) expect(m).toEqual(sent[m.seq - 1]);
  });

  // Paging forward with after= from 0 visits every event once.
  it("paging forward with a small limit visits 1..50 once", async () => {
    const seen: number[] = [];
    let after = 0;
    for (let guard = 0; guard < 20; guard++) {
      const { messages } = await page(`after=${after}&limit=7`);
      if (messages.length === 0) break;
      seen.push(...seqsOf(messages));
      after = messages.at(-1).seq;
    }
    expect(seen).toEqual(range(1, SEEDED));
  });

  // Paging backward with before= from the newest visits every event once.
  it("paging backward with a small limit visits 50..1 once", async () => {
    const seen: number[] = [];
    let before = SEEDED + 1;
    for (let guard = 0; guard < 20; guard++) {
      const { messages } = await page(`before=${before}&limit=7`);
      if (messages.length === 0) break;
      expect(seqsOf(messages)).toEqual([...seqsOf(messages)].sort((a, b) => a - b)); // oldest first
      seen.unshift(...seqsOf(messages));
      before = messages[0].seq;
    }
    expect(seen).toEqual(range(1, SEEDED));
  });
});

describe("WebSocket ?after=", () => {
  /** Opens a socket with the given query, then publishes one live event, and returns all message seqs up to it. */
  async function resumeThenLive(query: string): Promise<{ welcome: any; seqs: number[]; messages: any[] }> {
    const socket = await TestSocket.open(room, token, query);
    const welcome = await socket.next((f) => f.type === "welcome");
    const live = await notify(room, { event: "live", data: {} });
    const liveSeq = ((await live.json()) as any).message.seq as number;
    let messages = socket.messages();
    while (!messages.some((m) => m.seq === liveSeq)) messages = await socket.untilMessages(messages.length + 1);
    socket.close();
    return { welcome, seqs: seqsOf(messages), messages };
  }

  // welcome first (with the room's seq), then the missed events from D1 and the tail, then live.
  it("after=0 replays everything then goes live", async () => {
    const before = (await get(`/rooms/${room}/messages?limit=1`, token).then((r) => r.json()) as any).seq;
    const { welcome, seqs, messages } = await resumeThenLive("&after=0");
    expect(welcome.seq).toBe(before);
    expect(seqs).toEqual(range(1, before + 1));
    expect(messages.slice(0, SEEDED)).toEqual(sent);
  });

  it.each([
    ["&after=10", 11], // starts in D1
    ["&after=30", 31], // starts exactly at the boundary
    ["&after=42", 43], // tail only
  ])("%s replays from seq %i to live with no gap", async (query, first) => {
    const { welcome, seqs } = await resumeThenLive(query);
    expect(seqs).toEqual(range(first, welcome.seq + 1));
  });

  // Nothing missed (after = last seq), a cursor from the future, or no cursor at all: live only.
  it.each(["&after=LAST", "&after=999999", ""])("%s → live events only", async (query) => {
    const last = (await get(`/rooms/${room}/messages?limit=1`, token).then((r) => r.json()) as any).seq;
    const { seqs } = await resumeThenLive(query.replace("LAST", String(last)));
    expect(seqs).toEqual([last + 1]);
  });

  // Events published while a socket is replaying from D1 are neither lost nor repeated.
  it("replay from D1 races live traffic without gaps or repeats", async () => {
    const racing = uniqueRoom("resume-race");
    await seedEvents(racing, 45);
    await flushRoom(racing);
    const open = TestSocket.open(racing, token, "&after=0");
    const live = Promise.all(range(1, 15).map((i) => notify(racing, { event: "race", data: { i } })));
    const socket = await open;
    await live;
    const messages = await socket.untilMessages(60);
    expect(seqsOf(messages)).toEqual(range(1, 60));
    // Nothing after the 60th: a marker is the very next message.
    await notify(racing, { event: "marker", data: {} });
    expect(seqsOf(await socket.untilMessages(61))).toEqual(range(1, 61));
    socket.close();
  });
});
