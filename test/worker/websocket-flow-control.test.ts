/**
 * Issue 9 §3, a WebSocket that falls behind, inside workerd. workerd does not
 * report `bufferedAmount` (slow-consumer.test.ts), so the room bounds a
 * socket's backlog with the client's acknowledgements: a socket that sends
 * `{"type":"ack","seq":N}` has the bytes it was sent after its last
 * acknowledged seq counted, and is closed with 1013 past
 * WS_MAX_UNACKED_BYTES (256 KiB in the test configuration, 4 MiB by
 * default). What must hold:
 *
 *   - a socket that acks and then stops is closed with 1013 and the reason
 *     exactly when what it was sent since passes the cap; the room keeps
 *     delivering to a socket that acks, every event in order; the closed
 *     client resumes with `?after=` and gets exactly the rest;
 *   - a socket that never acks is not closed by this rule;
 *   - an ack beyond what was sent is clamped (it cannot acknowledge events
 *     not sent yet) and acks never move backwards;
 *   - the opt-in survives hibernation, the count starts empty after a wake,
 *     and acks on the woken socket work;
 *   - a resume far behind, through D1, by a socket that acks is paced by its
 *     acks instead of being closed by its own catch-up.
 */
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { ChatRoom } from "../../objects/ChatRoom";
import { CLOSE_SLOW_CONSUMER, SLOW_CONSUMER_REASON } from "../../objects/room/websocket-subscriber";
import { configFrom } from "../../server/config";
import { notify, tokenFor, TestSocket } from "./helpers";
import { flushRoom, range, roomStatus, roomStub, seqsOf, uniqueRoom } from "./support";

const CAP = Number(env.WS_MAX_UNACKED_BYTES);
const utf8 = (text: string) => new TextEncoder().encode(text).byteLength;

/** About 14 KiB of JSON per event: the cap is about 18 of them. */
const bulk = (i: number) => ({ event: "bulk", data: { i, text: "x".repeat(14_000) } });

async function publish(room: string, from: number, to: number): Promise<void> {
  for (let i = from; i <= to; i++) expect((await notify(room, bulk(i))).status).toBe(202);
}

/** A client inside workerd that acknowledges when told to, and counts the bytes it received since its last ack. */
class AckingSocket {
  /** UTF-8 bytes of the frames received since the last ack was sent (what the room counts as unacknowledged). */
  sinceAck = 0;
  /** The byte sizes of those frames, in order. */
  framesSinceAck: number[] = [];
  closeEvent?: { code: number; reason: string };
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly socket: TestSocket) {
    socket.ws.addEventListener("message", (event) => {
      if (typeof event.data !== "string") return;
      const bytes = utf8(event.data);
      this.sinceAck += bytes;
      this.framesSinceAck.push(bytes);
    });
    this.closed = new Promise((resolve) =>
      socket.ws.addEventListener("close", (event) => {
        this.closeEvent = { code: event.code, reason: event.reason };
        try {
          socket.ws.close(1000, "bye"); // complete the close handshake, as browsers do
        } catch {
          // already closed
        }
        resolve(this.closeEvent);
      }),
    );
  }

  static async open(room: string, user: string, query = ""): Promise<AckingSocket> {
    const socket = await TestSocket.open(room, await tokenFor(user), query);
    await socket.next((f) => f.type === "welcome");
    return new AckingSocket(socket);
  }

  ack(seq: number): void {
    this.sinceAck = 0;
    this.framesSinceAck = [];
    this.socket.send({ type: "ack", seq });
  }

  /** A ping answered: every frame the room sent before it has arrived, and every frame we sent before it was handled. */
  async sync(): Promise<void> {
    this.socket.send({ type: "ping" });
    await this.socket.next((f) => f.type === "pong");
  }

  seqs(): number[] {
    return seqsOf(this.socket.messages());
  }

  lastSeq(): number {
    return this.seqs().at(-1) ?? 0;
  }
}

describe("WebSocket acknowledgements bound a slow socket's backlog", () => {
  it("a socket that stops acking is closed with 1013 past the cap, a socket that acks gets everything meanwhile, and the closed one resumes with ?after=", async () => {
    const room = uniqueRoom("flow");
    const total = 40; // about 560 KiB, more than twice the cap
    const fast = await AckingSocket.open(room, "fast");
    const slow = await AckingSocket.open(room, "slow");
    // The fast client acks every event as it arrives.
    fast.socket.ws.addEventListener("message", (event) => {
      const frame = JSON.parse(String(event.data));
      if (frame.type === "message") fast.ack(frame.message.seq);
    });
    slow.ack(0); // opts in
    await slow.sync();

    await publish(room, 1, total);

    expect(await slow.closed).toEqual({ code: CLOSE_SLOW_CONSUMER, reason: SLOW_CONSUMER_REASON });
    // Closed by the event that took it over the cap, not before, not after.
    const last = slow.framesSinceAck.at(-1)!;
    expect(slow.sinceAck).toBeGreaterThan(CAP);
    expect(slow.sinceAck - last).toBeLessThanOrEqual(CAP);
    const had = slow.lastSeq();
    expect(slow.seqs()).toEqual(range(1, had));
    expect(had).toBeGreaterThan(10);
    expect(had).toBeLessThan(total);

    // The fast socket got every event, in order, and is the room's only subscriber left.
    expect(seqsOf(await fast.socket.untilMessages(total))).toEqual(range(1, total));
    expect(fast.closeEvent).toBeUndefined();
    expect((await roomStatus(room)).subscribers).toBe(1);

    // The slow client resumes where it stopped and gets exactly the rest.
    const resumed = await AckingSocket.open(room, "slow", `&after=${had}`);
    expect(seqsOf(await resumed.socket.untilMessages(total - had))).toEqual(range(had + 1, total));
    await resumed.sync();
    expect(resumed.seqs()).toEqual(range(had + 1, total));
    console.info(`flow control in workerd: cap ${CAP} B; the slow socket was closed at ${slow.sinceAck} B unacknowledged, after event ${had} of ${total}; it resumed with ?after=${had}`);
    fast.socket.close();
    resumed.socket.close();
  });

  it("a socket that never acks is not closed by the rule, however much it is sent", async () => {
    const room = uniqueRoom("flow-none");
    const plain = await TestSocket.open(room, await tokenFor("plain"));
    await plain.next((f) => f.type === "welcome");
    await publish(room, 1, 40);
    expect(seqsOf(await plain.untilMessages(40))).toEqual(range(1, 40));
    plain.send({ type: "ping" });
    await plain.next((f) => f.type === "pong");
    expect(plain.closed).toBe(false);
    expect((await roomStatus(room)).subscribers).toBe(1);
    plain.close();
  });

  it("an ack beyond what was sent is clamped: it does not acknowledge events sent later", async () => {
    const room = uniqueRoom("flow-clamp");
    const socket = await AckingSocket.open(room, "eager");
    socket.ack(1e12);
    await socket.sync();
    expect(socket.socket.frames.filter((f) => f.type === "error")).toEqual([]);
    await publish(room, 1, 40);
    expect(await socket.closed).toEqual({ code: CLOSE_SLOW_CONSUMER, reason: SLOW_CONSUMER_REASON });
    expect(socket.sinceAck - socket.framesSinceAck.at(-1)!).toBeLessThanOrEqual(CAP);
    expect(socket.sinceAck).toBeGreaterThan(CAP);
  });

  it("acks never move backwards: an older seq after a newer one changes nothing", async () => {
    const room = uniqueRoom("flow-back");
    const socket = await AckingSocket.open(room, "reader");
    socket.ack(0);
    await socket.sync();
    await publish(room, 1, 12); // about 170 KiB, two thirds of the cap
    await socket.socket.untilMessages(12);
    socket.ack(12);
    socket.ack(0); // backwards: ignored, so the 12 events stay acknowledged
    socket.ack(5);
    await socket.sync();
    await publish(room, 13, 24); // another 170 KiB: over the cap only if the ack had moved back
    await socket.socket.untilMessages(24);
    await socket.sync();
    expect(socket.closeEvent).toBeUndefined();
    expect(socket.seqs()).toEqual(range(1, 24));
    socket.socket.close();
  });

  it("malformed acks are answered with invalid_body and keep the socket open", async () => {
    const room = uniqueRoom("flow-bad");
    const socket = await AckingSocket.open(room, "reader");
    for (const frame of [{ type: "ack" }, { type: "ack", seq: -1 }, { type: "ack", seq: 1.5 }, { type: "ack", seq: "3" }]) {
      socket.socket.send(frame);
      const error = await socket.socket.next((f) => f.type === "error");
      expect(error).toMatchObject({ type: "error", code: "invalid_body" });
      expect(error.message).toMatch(/^seq: /);
    }
    await socket.sync();
    expect(socket.closeEvent).toBeUndefined();
    expect((await roomStatus(room)).seq).toBe(0); // nothing stored
    socket.socket.close();
  });

  it("the opt-in survives hibernation; after a wake the count starts empty and acks work", async () => {
    const room = uniqueRoom("flow-hib");
    const sleeper = await AckingSocket.open(room, "sleeper");
    const waker = await AckingSocket.open(room, "waker");
    for (const socket of [sleeper, waker]) {
      socket.ack(0);
      await socket.sync();
    }
    await publish(room, 1, 12); // two thirds of the cap, acknowledged by neither
    for (const socket of [sleeper, waker]) await socket.socket.untilMessages(12);

    await evictDurableObject(roomStub(room));
    // The waker's ack of an old seq wakes the room on its hibernated socket.
    waker.ack(1);
    await waker.sync();
    await publish(room, 13, 24); // with the 12 from before the wake, this would be over the cap for both
    for (const socket of [sleeper, waker]) {
      await socket.socket.untilMessages(24);
      await socket.sync();
      expect(socket.closeEvent).toBeUndefined();
    }

    // The waker's ack on the woken socket counts: 12 more are fine. The sleeper has not acked since
    // before the eviction and is still opted in: the same 12 take it over the cap.
    waker.ack(24);
    await waker.sync();
    await publish(room, 25, 36);
    expect(await sleeper.closed).toEqual({ code: CLOSE_SLOW_CONSUMER, reason: SLOW_CONSUMER_REASON });
    expect(sleeper.lastSeq()).toBeGreaterThan(24);
    expect(sleeper.seqs()).toEqual(range(1, sleeper.lastSeq()));
    expect(seqsOf(await waker.socket.untilMessages(36))).toEqual(range(1, 36));
    await waker.sync();
    expect(waker.closeEvent).toBeUndefined();
    waker.socket.close();
  });

  it("a resume through D1 far over the cap, by a socket that acks, is paced by its acks and never closed", async () => {
    const room = uniqueRoom("flow-replay");
    const total = 60; // about 840 KiB; tests keep a 20-event tail, so most of it is read from D1
    await publish(room, 1, total);
    await flushRoom(room);

    // Hold the room's D1 reads until the socket's first ack has been handled, so the whole replay is counted.
    await runInDurableObject(roomStub(room), (instance: ChatRoom) => {
      const d1 = (instance as any).history.d1;
      const readAfter = d1.readAfter.bind(d1);
      d1.readAfter = async (...args: unknown[]) => {
        while ((instance as any).__holdD1) await scheduler.wait(2);
        return readAfter(...args);
      };
      (instance as any).__holdD1 = true;
    });
    const socket = await AckingSocket.open(room, "behind", "&after=0");
    socket.ack(0);
    await socket.sync();
    expect(socket.seqs()).toEqual([]);
    await runInDurableObject(roomStub(room), (instance: ChatRoom) => void ((instance as any).__holdD1 = false));

    // Take the replay one pause at a time: each pause comes at half the cap, and the next ack lets it go on.
    const pauses: number[] = [];
    while (socket.seqs().length < total) {
      await socket.socket.untilMessages(socket.seqs().length + 1);
      await socket.sync(); // the replay runs synchronously up to its pause, so everything before it has arrived
      const counted = socket.framesSinceAck.slice(0, -1); // what the room had counted when it paused: all but our pong
      const unacked = counted.reduce((a, b) => a + b, 0);
      if (socket.seqs().length < total) expect(unacked).toBeGreaterThanOrEqual(CAP / 2); // it paused at half the cap…
      expect(unacked - counted.at(-1)!).toBeLessThan(CAP / 2); // …and not later
      expect(socket.closeEvent).toBeUndefined();
      pauses.push(unacked);
      socket.ack(socket.lastSeq());
    }
    expect(socket.seqs()).toEqual(range(1, total));
    expect(pauses.length).toBeGreaterThanOrEqual(6);
    expect(Math.max(...pauses)).toBeLessThan(CAP);
    console.info(`paced resume in workerd: cap ${CAP} B; ${total} events replayed in ${pauses.length} steps of at most ${Math.max(...pauses)} B unacknowledged`);

    // Caught up: it is live.
    await publish(room, total + 1, total + 1);
    expect(seqsOf(await socket.socket.untilMessages(total + 1))).toEqual(range(1, total + 1));
    socket.socket.close();
  });

  it("WS_MAX_UNACKED_BYTES: 4 MiB by default, overridable, 0 for no cap", () => {
    expect(configFrom({} as any).wsMaxUnackedBytes).toBe(4 * 1024 * 1024);
    expect(configFrom({ WS_MAX_UNACKED_BYTES: "1048576" } as any).wsMaxUnackedBytes).toBe(1_048_576);
    expect(configFrom({ WS_MAX_UNACKED_BYTES: "0" } as any).wsMaxUnackedBytes).toBe(0);
    expect(() => configFrom({ WS_MAX_UNACKED_BYTES: "lots" } as any)).toThrow(/WS_MAX_UNACKED_BYTES/);
  });
});
