/**
 * SPEC §8 `pusher_internal:subscription_count`: sent to a channel's
 * subscribers as its count over every hub shard changes, throttled, on the
 * channels PUSHER_SUBSCRIPTION_COUNT lists (here `counted-*` and its
 * private/cache/presence forms), never on presence channels.
 */
import { afterAll, describe, expect, it } from "vitest";
import { SubscriptionCountNotifier } from "../../objects/room/subscription-count";
import { notify } from "./helpers";
import { PusherTestSocket, settleHubs } from "./pusher-support";
import { uniqueRoom } from "./support";

afterAll(settleHubs);

const countIs = (channel: string, count: number) => (f: { event: string; channel?: string; data: any }) =>
  f.channel === channel && f.event === "pusher_internal:subscription_count" && f.data?.subscription_count === count;

describe("subscription_count", () => {
  it("follows joins and leaves, over every shard, to every subscriber", async () => {
    const channel = uniqueRoom("counted-viewers");
    const first = await PusherTestSocket.open();
    expect(await first.subscribe(channel)).toMatchObject({ event: "pusher_internal:subscription_succeeded" });
    const one = await first.next((f) => f.channel === channel);
    expect(one).toMatchObject({ event: "pusher_internal:subscription_count", data: { subscription_count: 1 } });
    expect(typeof one.rawData).toBe("string");

    const others = await Promise.all(Array.from({ length: 5 }, () => PusherTestSocket.open()));
    await Promise.all(others.map((socket) => socket.subscribe(channel)));
    for (const socket of [first, ...others]) await socket.next(countIs(channel, 6));

    others[0]!.send({ event: "pusher:unsubscribe", data: { channel } });
    others[1]!.close();
    for (const socket of [first, ...others.slice(2)]) await socket.next(countIs(channel, 4));
    first.close();
    for (const socket of others) socket.close();
  });

  it("is not sent on presence channels, nor on channels the setting does not list", async () => {
    for (const [channel, options] of [[uniqueRoom("presence-counted-team"), { channelData: { user_id: "u" } }], [uniqueRoom("uncounted"), {}]] as const) {
      const socket = await PusherTestSocket.open();
      await socket.subscribe(channel, options);
      const other = await PusherTestSocket.open();
      await other.subscribe(channel, channel.startsWith("presence-") ? { channelData: { user_id: "v" } } : {});
      expect((await notify(channel, { event: "marker", data: {} })).status).toBe(202);
      await socket.nextOn(channel, "marker");
      expect(socket.frames.filter((f) => f.event === "pusher_internal:subscription_count")).toEqual([]);
      socket.close();
      other.close();
    }
  });

  it("sends a burst of changes as the first count at once and the latest one interval later", async () => {
    let count = 0;
    const sent: number[] = [];
    let second!: () => void;
    const done = new Promise<void>((resolve) => (second = resolve));
    const notifier = new SubscriptionCountNotifier(() => count, (n) => {
      sent.push(n);
      if (sent.length === 2) second();
    }, 50);
    for (let i = 0; i < 50; i++) {
      count++;
      notifier.changed();
    }
    expect(sent).toEqual([1]);
    await done;
    expect(sent).toEqual([1, 50]);
  });
});
