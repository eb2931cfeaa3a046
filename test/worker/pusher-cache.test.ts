/**
 * SPEC §8 cache channels (`cache-`, `private-cache-`, `presence-cache-`,
 * `private-encrypted-cache-`): a new subscriber gets the room's last event
 * right after its subscription_succeeded (while it is under 30 minutes
 * old), or `pusher:cache_miss`, which is also the room's one cache-miss
 * call site.
 */
import { runInDurableObject } from "cloudflare:test";
import { afterAll, describe, expect, it } from "vitest";
import { notify } from "./helpers";
import { trigger } from "./pusher-api-signer";
import { PusherTestSocket, settleHubs, type PusherFrame } from "./pusher-support";
import { roomStub, uniqueRoom } from "./support";

afterAll(settleHubs);

/** The subscription's outcome and the frame right after it on the channel. */
async function subscribeAndNext(socket: PusherTestSocket, channel: string, options: Parameters<PusherTestSocket["subscribe"]>[1] = {}): Promise<[PusherFrame, PusherFrame]> {
  const outcome = await socket.subscribe(channel, options);
  return [outcome, await socket.next((f) => f.channel === channel)];
}

/** Records the room's cache-miss hook calls while `body` runs. */
async function cacheMissesDuring(channel: string, body: () => Promise<void>): Promise<string[]> {
  const calls: string[] = [];
  await runInDurableObject(roomStub(channel), (instance) => {
    (instance as any).onCacheMiss = (name: string) => calls.push(name);
  });
  await body();
  return calls;
}

describe("cache channels", () => {
  it("a subscriber of an empty cache channel gets pusher:cache_miss, and the room's hook is called once", async () => {
    const channel = uniqueRoom("cache-location");
    const socket = await PusherTestSocket.open();
    // The room exists before the subscription so the hook can be observed.
    await runInDurableObject(roomStub(channel), () => {});
    const calls = await cacheMissesDuring(channel, async () => {
      const [outcome, next] = await subscribeAndNext(socket, channel);
      expect(outcome.event).toBe("pusher_internal:subscription_succeeded");
      expect(next).toEqual({ event: "pusher:cache_miss", channel, data: undefined, rawData: undefined });
    });
    expect(calls).toEqual([channel]);
    socket.close();
  });

  it("a new subscriber gets the last event at once, as live subscribers got it, then newer ones in order", async () => {
    const channel = uniqueRoom("cache-score");
    const live = await PusherTestSocket.open();
    await live.subscribe(channel);
    await live.next((f) => f.event === "pusher:cache_miss");
    expect((await trigger({ name: "score", data: JSON.stringify({ home: 1 }), channels: [channel] })).status).toBe(200);
    expect((await notify(channel, { event: "score", data: { home: 2 } })).status).toBe(202);
    const seen = await live.nextOn(channel, "score");
    const last = await live.nextOn(channel, "score");
    expect([seen.data, last.data]).toEqual([{ home: 1 }, { home: 2 }]);

    const late = await PusherTestSocket.open();
    const [outcome, cached] = await subscribeAndNext(late, channel);
    expect(outcome.event).toBe("pusher_internal:subscription_succeeded");
    expect(cached).toEqual(last);
    expect((await notify(channel, { event: "score", data: { home: 3 } })).status).toBe(202);
    expect((await late.nextOn(channel, "score")).data).toEqual({ home: 3 });
    expect(late.frames.filter((f) => f.event === "pusher:cache_miss")).toEqual([]);
    live.close();
    late.close();
  });

  it("works on private-cache-, presence-cache- and private-encrypted-cache- channels", async () => {
    for (const prefix of ["private-cache-doc", "presence-cache-doc", "private-encrypted-cache-doc"]) {
      const channel = uniqueRoom(prefix);
      const socket = await PusherTestSocket.open();
      const options = prefix.startsWith("presence-") ? { channelData: { user_id: "u1" } } : {};
      const [, miss] = await subscribeAndNext(socket, channel, options);
      expect(miss.event).toBe("pusher:cache_miss");
      expect((await trigger({ name: "state", data: JSON.stringify({ v: prefix }), channels: [channel] })).status).toBe(200);
      await socket.nextOn(channel, "state");
      const other = await PusherTestSocket.open();
      const [outcome, cached] = await subscribeAndNext(other, channel, prefix.startsWith("presence-") ? { channelData: { user_id: "u2" } } : {});
      expect(outcome.event).toBe("pusher_internal:subscription_succeeded");
      expect(cached).toMatchObject({ event: "state", data: { v: prefix } });
      socket.close();
      other.close();
    }
  });

  it("an event older than 30 minutes is no longer cached", async () => {
    const channel = uniqueRoom("cache-old");
    expect((await notify(channel, { event: "state", data: { v: 1 } })).status).toBe(202);
    await runInDurableObject(roomStub(channel), (_instance, state) => {
      state.storage.sql.exec("UPDATE events SET accepted_at = accepted_at - ?", 31 * 60 * 1000);
    });
    const socket = await PusherTestSocket.open();
    const [, next] = await subscribeAndNext(socket, channel);
    expect(next.event).toBe("pusher:cache_miss");
    socket.close();
  });

  it("an ordinary channel gets neither", async () => {
    const channel = uniqueRoom("plain");
    expect((await notify(channel, { event: "state", data: {} })).status).toBe(202);
    const socket = await PusherTestSocket.open();
    await socket.subscribe(channel);
    expect((await notify(channel, { event: "marker", data: {} })).status).toBe(202);
    expect(await socket.next((f) => f.channel === channel)).toMatchObject({ event: "marker" });
    socket.close();
  });
});
