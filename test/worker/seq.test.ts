/**
 * SPEC §1: every event gets the next seq, 1, 2, 3 …, no gaps, no reuse, and
 * every socket receives every event once, in seq order, whichever transport
 * the sender used.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { notify, postJson, tokenFor, TestSocket } from "./helpers";
import { flushRoom, get, range, seqsOf, uniqueRoom } from "./support";

/** Each sender stays within the burst of 20, so no send is rate limited. */
const SOCKET_SENDERS = 5;
const HTTP_SENDERS = 5;
const PER_SENDER = 20;
const TOTAL = (SOCKET_SENDERS + HTTP_SENDERS) * PER_SENDER;

describe("seq assignment", () => {
  // 200 concurrent sends from 5 sockets and 5 HTTP users: seqs are exactly 1..200,
  // every socket (senders and a silent observer) sees each once and in order.
  it("200 concurrent sends over WebSocket and HTTP → seqs 1..200, delivered once, in order", async () => {
    const room = uniqueRoom("seq");
    const senderNames = range(1, SOCKET_SENDERS).map((i) => `ws${i}`);
    const sockets = await Promise.all(senderNames.map(async (name) => TestSocket.open(room, await tokenFor(name))));
    const observer = await TestSocket.open(room, await tokenFor("observer"));
    const everyone = [...sockets, observer];
    await Promise.all(everyone.map((s) => s.next((f) => f.type === "welcome")));

    const acks = sockets.flatMap((socket, s) =>
      range(1, PER_SENDER).map((i) => socket.next((f) => f.type === "ack" && f.clientId === `${senderNames[s]}-${i}`)),
    );
    const httpTokens = await Promise.all(range(1, HTTP_SENDERS).map((i) => tokenFor(`http${i}`)));
    const httpSends = httpTokens.flatMap((token, h) =>
      range(1, PER_SENDER).map((i) => postJson(`/rooms/${room}/messages`, { data: { text: `h${h + 1}-${i}` }, clientId: `http${h + 1}-${i}` }, token)),
    );
    for (const [s, socket] of sockets.entries()) {
      for (const i of range(1, PER_SENDER)) socket.send({ type: "send", data: { text: `s${s + 1}-${i}` }, clientId: `${senderNames[s]}-${i}` });
    }

    const httpResponses = await Promise.all(httpSends);
    expect(httpResponses.map((r) => r.status)).toEqual(Array(HTTP_SENDERS * PER_SENDER).fill(201));
    const httpSeqs = await Promise.all(httpResponses.map(async (r) => ((await r.json()) as any).message.seq as number));
    const ackSeqs = (await Promise.all(acks)).map((a) => a.seq as number);

    // Exactly 1..200: no gap, no seq given twice.
    expect([...httpSeqs, ...ackSeqs].sort((a, b) => a - b)).toEqual(range(1, TOTAL));

    // A marker after everything: whatever arrives before it is the whole story.
    const marker = await notify(room, { event: "marker", data: {} });
    expect(((await marker.json()) as any).message.seq).toBe(TOTAL + 1);
    for (const socket of everyone) {
      const received = await socket.untilMessages(TOTAL + 1);
      expect(seqsOf(received)).toEqual(range(1, TOTAL + 1));
      // The seq each sender was told is the seq everyone saw for its clientId.
      for (const message of received.slice(0, TOTAL)) {
        expect(message.clientId).toMatch(new RegExp(`^${message.from.id}-\\d+$`));
      }
    }
    const bySeq = new Map(observer.messages().map((m) => [m.seq, m]));
    for (const ack of (await Promise.all(acks))) expect(bySeq.get(ack.seq)!.clientId).toBe(ack.clientId);
    // One socket's frames are handled in the order it sent them.
    for (const name of senderNames) {
      const own = observer.messages().filter((m) => m.from?.id === name);
      expect(own.map((m) => m.clientId)).toEqual(range(1, PER_SENDER).map((i) => `${name}-${i}`));
    }
    for (const socket of everyone) socket.close();

    // History agrees, across the D1 boundary once the tail has been trimmed.
    const status = await flushRoom(room);
    expect(status.trimmedSeq).toBe(TOTAL + 1 - Number(env.ROOM_TAIL_EVENTS ?? 20));
    const history = await get(`/rooms/${room}/messages?after=0&limit=1000`, await tokenFor("observer"));
    const page = (await history.json()) as any;
    expect(page.seq).toBe(TOTAL + 1);
    expect(page.messages).toEqual(observer.messages());
  });

  // Seqs survive quiet periods and mixing senders: a new room starts at 1 and counts up.
  it("a new room starts at seq 1, and seqs are per room", async () => {
    const a = uniqueRoom("seq-a");
    const b = uniqueRoom("seq-b");
    const token = await tokenFor("alice");
    const seqs: number[] = [];
    for (const room of [a, b, a, a, b]) {
      const response = await postJson(`/rooms/${room}/messages`, { data: { text: room } }, token);
      seqs.push(((await response.json()) as any).message.seq);
    }
    expect(seqs).toEqual([1, 1, 2, 3, 2]);
  });
});
