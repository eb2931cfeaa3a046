/**
 * The room's per-shard Pusher subscriber on its own, with a scripted hub
 * link: one RPC in flight at a time and everything queued meanwhile in one
 * batch, order kept across retries, and a backlog that overflows turning
 * into `gap` (subscription confirmations kept) instead of silent loss.
 */
import { describe, expect, it } from "vitest";
import type { HubDeliverOptions, PusherDelivery } from "../../objects/pusher/hub-api";
import { EncodedEvent } from "../../objects/room/encoded-event";
import { EventRun } from "../../objects/room/event-run";
import { MAX_QUEUED_CHARS, PusherHubSubscriber } from "../../objects/room/pusher-subscriber";

interface Call {
  deliveries: PusherDelivery[];
  options: HubDeliverOptions;
  settle: (outcome: number | Error) => void;
}

/** A hub link whose calls the test answers one by one. */
function scriptedHub() {
  const calls: Call[] = [];
  const waiters: (() => void)[] = [];
  const send = (deliveries: PusherDelivery[], options: HubDeliverOptions) =>
    new Promise<number>((resolve, reject) => {
      calls.push({ deliveries, options, settle: (outcome) => (outcome instanceof Error ? reject(outcome) : resolve(outcome)) });
      waiters.splice(0).forEach((wake) => wake());
    });
  const untilCalls = async (n: number) => {
    while (calls.length < n) await new Promise<void>((resolve) => waiters.push(resolve));
    return calls[n - 1]!;
  };
  return { calls, send, untilCalls };
}

const frames = (call: Call) => call.deliveries.map((d) => d.frame);

describe("PusherHubSubscriber", () => {
  it("sends one batch per round trip: whatever queued during a call leaves together, in order", async () => {
    const hub = scriptedHub();
    const subscriber = new PusherHubSubscriber("pusher-hub:0", hub.send, () => undefined, () => {});
    subscriber.push({ frame: "f0" });
    const first = await hub.untilCalls(1);
    for (let i = 1; i <= 100; i++) subscriber.push({ frame: `f${i}` });
    expect(hub.calls.length).toBe(1); // nothing more while the first is in flight
    first.settle(1);
    const second = await hub.untilCalls(2);
    expect(frames(first)).toEqual(["f0"]);
    expect(frames(second)).toEqual(Array.from({ length: 100 }, (_, i) => `f${i + 1}`));
    second.settle(1);
    await Promise.resolve();
    expect(hub.calls.length).toBe(2);
  });

  it("carries an event's excluded socket_id and builds its Pusher frame once", async () => {
    const hub = scriptedHub();
    const subscriber = new PusherHubSubscriber("pusher-hub:0", hub.send, () => undefined, () => {});
    const envelope = { room: "private-a", seq: 1, id: "x", event: "shipped", from: { id: "u1", name: "U" }, data: { n: 1 }, ts: "2026-01-01T00:00:00.000Z" };
    const event = new EncodedEvent(1, JSON.stringify(envelope), envelope, null, "1.2");
    subscriber.deliver(new EventRun([event]));
    const call = await hub.untilCalls(1);
    expect(call.deliveries).toEqual([{ frame: event.pusherFrame, exceptSocketId: "1.2" }]);
    expect(JSON.parse(event.pusherFrame)).toEqual({ event: "shipped", channel: "private-a", data: '{"n":1}', user_id: "u1" });
    call.settle(1);
  });

  it("retries a failed call with the same frames first, then what queued meanwhile", async () => {
    const hub = scriptedHub();
    const subscriber = new PusherHubSubscriber("pusher-hub:0", hub.send, () => undefined, () => {});
    subscriber.push({ frame: "a" });
    (await hub.untilCalls(1)).settle(new Error("hub unreachable"));
    subscriber.push({ frame: "b" });
    const retry = await hub.untilCalls(2);
    expect(frames(retry)).toEqual(["a", "b"]);
    retry.settle(1);
  });

  it("drops an overflowing backlog and tells the hub first (gap), then goes on with what comes after", async () => {
    const hub = scriptedHub();
    const subscriber = new PusherHubSubscriber("pusher-hub:0", hub.send, () => undefined, () => {});
    subscriber.push({ frame: "first" });
    const stuck = await hub.untilCalls(1);
    const big = "x".repeat(64 * 1024);
    let pushed = 0;
    do {
      subscriber.push({ frame: big });
      pushed++;
    } while (subscriber.queued > 0);
    expect(pushed * big.length).toBeGreaterThan(MAX_QUEUED_CHARS);
    subscriber.push({ frame: "welcome-1", to: "1.1" });
    subscriber.push({ frame: "after-drop" });
    stuck.settle(new Error("hub unreachable"));
    const gap = await hub.untilCalls(2);
    expect(gap.options).toEqual({ gap: true });
    expect(gap.deliveries).toEqual([]);
    gap.settle(0);
    const next = await hub.untilCalls(3);
    expect(next.options).toEqual({});
    expect(frames(next)).toEqual(["welcome-1", "after-drop"]);
    next.settle(1);
  });

  it("reports the hub's socket count after each batch and stops once closed", async () => {
    const hub = scriptedHub();
    const counts: number[] = [];
    let reported!: () => void;
    const firstReport = new Promise<void>((resolve) => (reported = resolve));
    const subscriber = new PusherHubSubscriber("pusher-hub:3", hub.send, () => undefined, (_name, count) => (counts.push(count), reported()));
    subscriber.push({ frame: "a" });
    (await hub.untilCalls(1)).settle(7);
    await firstReport;
    expect(counts).toEqual([7]);
    subscriber.close();
    subscriber.push({ frame: "b" });
    expect(subscriber.queued).toBe(0);
    expect(hub.calls.length).toBe(1);
  });
});
