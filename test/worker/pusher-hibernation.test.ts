/**
 * What survives eviction on each side of the Pusher bridge: hubs keep their
 * sockets (hibernated) and rebuild who is on which channel; rooms keep their
 * Pusher subscriptions and presence; a hub that lost its sockets is
 * reconciled away; silent connections are pinged and then closed.
 */
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { afterAll, describe, expect, it } from "vitest";
import type { PusherHub } from "../../objects/PusherHub";
import { notify, tokenFor, TestSocket } from "./helpers";
import { evictHubs, hubStub, HUB_SHARDS, PusherTestSocket, settleHubs } from "./pusher-support";
import { get, roomStatus, roomStub, uniqueRoom, untilSubscribers } from "./support";

afterAll(settleHubs);

async function presenceIds(room: string): Promise<string[]> {
  const response = await get(`/rooms/${room}/presence`, await tokenFor("observer"));
  return ((await response.json()) as { members: { id: string }[] }).members.map((m) => m.id).sort();
}

/** The hub shard holding a socket (each connection lands on one at random). */
async function shardOf(socketId: string, channel: string): Promise<number> {
  for (let shard = 0; shard < HUB_SHARDS; shard++) {
    if ((await hubStub(shard).socketsOn(channel)).includes(socketId)) return shard;
  }
  throw new Error(`no hub holds ${socketId} on ${channel}`);
}

describe("hub eviction (sockets hibernated)", () => {
  it("keeps every subscription: events, presence, client events and exclusion by socket_id still work", async () => {
    const channel = uniqueRoom("presence-hib");
    const alice = await PusherTestSocket.open();
    const bob = await PusherTestSocket.open();
    await alice.subscribe(channel, { channelData: { user_id: "alice", user_info: { name: "Alice" } } });
    await bob.subscribe(channel, { channelData: { user_id: "bob", user_info: { name: "Bob" } } });
    await alice.nextOn(channel, "pusher_internal:member_added");

    await evictHubs();

    await notify(channel, { event: "after-evict", data: { n: 1 } });
    expect((await alice.nextOn(channel, "after-evict")).data).toEqual({ n: 1 });
    expect((await bob.nextOn(channel, "after-evict")).data).toEqual({ n: 1 });
    // The hub still knows bob is "bob" on this channel: his client event carries his user_id.
    bob.trigger(channel, "client-hello", { from: "bob" });
    expect(await alice.nextOn(channel, "client-hello")).toMatchObject({ user_id: "bob", rawData: { from: "bob" } });
    // …and alice's socket_id is still hers.
    const result = await roomStub(channel).pusherTrigger(channel, { event: "not-for-alice", data: "{}", socketId: alice.socketId });
    expect(result.ok).toBe(true);
    await bob.nextOn(channel, "not-for-alice");
    await notify(channel, { event: "marker", data: {} });
    await alice.nextOn(channel, "marker");
    expect(alice.frames.filter((f) => f.event === "not-for-alice")).toEqual([]);

    // Unsubscribing after the wake reaches the room: bob leaves presence.
    bob.send({ event: "pusher:unsubscribe", data: { channel } });
    expect((await alice.nextOn(channel, "pusher_internal:member_removed")).data).toEqual({ user_id: "bob" });
    expect(await presenceIds(channel)).toEqual(["alice"]);
  });

  it("pusher-js's ping is answered while the hub is evicted", async () => {
    const socket = await PusherTestSocket.open();
    await evictHubs();
    socket.send('{"event":"pusher:ping","data":{}}');
    expect((await socket.next()).event).toBe("pusher:pong");
  });
});

describe("room eviction", () => {
  it("the room rebuilds its Pusher subscribers and presence from storage, without new announcements", async () => {
    const channel = uniqueRoom("presence-roomhib");
    const alice = await PusherTestSocket.open();
    const bob = await PusherTestSocket.open();
    await alice.subscribe(channel, { channelData: { user_id: "alice", user_info: { name: "Alice" } } });
    await bob.subscribe(channel, { channelData: { user_id: "bob", user_info: { name: "Bob" } } });
    await alice.nextOn(channel, "pusher_internal:member_added");

    await evictDurableObject(roomStub(channel));

    await notify(channel, { event: "after-room-evict", data: {} });
    await alice.nextOn(channel, "after-room-evict");
    await bob.nextOn(channel, "after-room-evict");
    expect(await presenceIds(channel)).toEqual(["alice", "bob"]);
    expect([...alice.frames, ...bob.frames].filter((f) => f.event.startsWith("pusher_internal:member"))).toEqual([]);
    // A newcomer's member list comes from the restored presence, user_info included.
    const carol = await PusherTestSocket.open();
    const list = await carol.subscribe(channel, { channelData: { user_id: "carol", user_info: { name: "Carol" } } });
    expect(list.data.presence.hash).toEqual({ alice: { name: "Alice" }, bob: { name: "Bob" }, carol: { name: "Carol" } });
  });

  it("both sides evicted at once still deliver", async () => {
    const channel = uniqueRoom("private-bothhib");
    const socket = await PusherTestSocket.open();
    await socket.subscribe(channel);
    await evictDurableObject(roomStub(channel));
    await evictHubs();
    await notify(channel, { event: "both", data: { ok: true } });
    expect((await socket.nextOn(channel, "both")).data).toEqual({ ok: true });
  });
});

describe("a hub that lost its connections", () => {
  it("is reconciled: the room forgets its sockets and their presence", async () => {
    const channel = uniqueRoom("presence-lost");
    const observer = await TestSocket.open(channel, await tokenFor("olga"));
    await observer.next((f) => f.type === "welcome");
    const alice = await PusherTestSocket.open();
    await alice.subscribe(channel, { channelData: { user_id: "alice", user_info: { name: "Alice" } } });
    await observer.next((f) => f.type === "presence" && f.action === "join" && f.user.id === "alice");

    // The hub goes away with its sockets (a restart, not hibernation): no close reaches it.
    await evictDurableObject(hubStub(await shardOf(alice.socketId, channel)), { webSockets: "close" });
    await alice.closed();

    // The next event wakes the hub, which has no socket for the channel any more; the room drops them.
    await notify(channel, { event: "anyone", data: {} });
    const left = await observer.next((f) => f.type === "presence" && f.action === "leave");
    expect(left.user.id).toBe("alice");
    expect(await presenceIds(channel)).toEqual(["olga"]);
  });
});

describe("a room that had to drop frames for a hub (gap)", () => {
  it("the hub closes the channel's sockets with 4200, so their clients resubscribe, and the room forgets them", async () => {
    const channel = uniqueRoom("private-gap");
    const socket = await PusherTestSocket.open();
    await socket.subscribe(channel);
    expect((await roomStatus(channel)).subscribers).toBe(1); // the shard's one subscriber in the room
    const shard = await shardOf(socket.socketId, channel);
    expect(await hubStub(shard).deliver(channel, [], { gap: true })).toBe(0);
    expect(await socket.next((f) => f.event === "pusher:error")).toMatchObject({ data: { code: 4200 } });
    expect((await socket.closed()).code).toBe(4200);
    await untilSubscribers(channel, 0); // the room forgets the closed sockets
  });
});

describe("silent connections", () => {
  it("are pinged after activity_timeout and closed with 4201 when no pong comes; an answer keeps them", async () => {
    const channel = uniqueRoom("presence-silent");
    const quiet = await PusherTestSocket.open();
    const lively = await PusherTestSocket.open();
    await quiet.subscribe(channel, { channelData: { user_id: "quiet", user_info: {} } });
    await lively.subscribe(channel, { channelData: { user_id: "lively", user_info: {} } });
    const shards = new Set([await shardOf(quiet.socketId, channel), await shardOf(lively.socketId, channel)]);
    const sweep = (at: number) =>
      Promise.all([...shards].map((shard) => runInDurableObject(hubStub(shard) as DurableObjectStub, (hub: unknown) => void (hub as PusherHub).sweep(at))));

    const start = Date.now();
    await sweep(start + 121_000);
    expect((await quiet.next((f) => f.event === "pusher:ping")).event).toBe("pusher:ping");
    await lively.next((f) => f.event === "pusher:ping");
    lively.send({ event: "pusher:pong", data: {} }); // what pusher-js answers
    await lively.subscribe(uniqueRoom("after-pong")); // its pong has been read once this succeeds

    await sweep(start + 121_000 + 31_000);
    expect((await quiet.closed()).code).toBe(4201);
    expect(lively.closeEvent).toBeUndefined();
    expect((await lively.nextOn(channel, "pusher_internal:member_removed")).data).toEqual({ user_id: "quiet" });
  });
});
