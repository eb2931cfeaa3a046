/**
 * SPEC §8: private and presence channels (signatures checked, members
 * announced, Pusher and native presence as one), client events, and
 * Pusher's "exclude a recipient".
 */
import { env } from "cloudflare:workers";
import { afterAll, describe, expect, it } from "vitest";
import { checkSubscription } from "../../objects/pusher/subscription-check";
import { getPusherChannel, listPusherChannels } from "../../worker/pusher/channels";
import { notify, tokenFor, TestSocket } from "./helpers";
import { PusherTestSocket, settleHubs, pusherSign, type PusherFrame } from "./pusher-support";
import { eventually, get, roomStatus, roomStub, uniqueRoom } from "./support";

afterAll(settleHubs);

/** Waits until a marker event on `channel` arrives: everything sent before it to this socket has arrived too. */
async function settle(socket: PusherTestSocket, channel: string): Promise<void> {
  const name = `marker-${crypto.randomUUID().slice(0, 8)}`;
  await notify(channel, { event: name, data: {} });
  await socket.nextOn(channel, name);
}

/** Polls the room's presence until `user` holds `count` connections (closing is asynchronous on the hub). */
async function untilConnections(room: string, user: string, count: number): Promise<void> {
  const token = await tokenFor("observer");
  await eventually(async () => {
    const { members } = (await (await get(`/rooms/${room}/presence`, token)).json()) as { members: { id: string; connections: number }[] };
    return members.find((m) => m.id === user)?.connections === count;
  }, `${user} to hold ${count} connection(s) in ${room}`);
}

const eventsOn = (socket: PusherTestSocket, channel: string, prefix: string): PusherFrame[] =>
  socket.frames.filter((f) => f.channel === channel && f.event.startsWith(prefix));

describe("public channels are opt-in (PUSHER_PUBLIC_CHANNELS)", () => {
  const app = { key: env.PUSHER_KEY!, secret: env.PUSHER_SECRET! };

  it("without the setting no room is a public channel; listed ids and prefixes are, others are not", async () => {
    const refused = await checkSubscription({ channel: "support-42" }, "1.2", { ...app, publicChannels: [] });
    expect(refused.ok).toBe(false);
    const frame = JSON.parse((refused as { frame: string }).frame);
    expect(frame).toMatchObject({ event: "pusher:subscription_error", channel: "support-42", data: { type: "AuthError", status: 403 } });
    expect(frame.data.error).toContain("PUSHER_PUBLIC_CHANNELS");

    const listed = { ...app, publicChannels: ["news", "public-*"] };
    expect((await checkSubscription({ channel: "news" }, "1.2", listed)).ok).toBe(true);
    expect((await checkSubscription({ channel: "public-scores.7" }, "1.2", listed)).ok).toBe(true);
    expect((await checkSubscription({ channel: "newsroom" }, "1.2", listed)).ok).toBe(false);
    expect((await checkSubscription({ channel: "support-42" }, "1.2", listed)).ok).toBe(false);
  });

  it("the setting never opens private or presence channels without a signature", async () => {
    const open = { ...app, publicChannels: ["*"] };
    expect((await checkSubscription({ channel: "private-orders.1" }, "1.2", open)).ok).toBe(false);
    expect((await checkSubscription({ channel: "presence-team" }, "1.2", open)).ok).toBe(false);
  });
});

describe("private channels", () => {
  it("subscribes with a valid signature and receives the room's events", async () => {
    const channel = uniqueRoom("private-orders");
    const socket = await PusherTestSocket.open();
    expect(await socket.subscribe(channel)).toMatchObject({ event: "pusher_internal:subscription_succeeded", channel });
    await notify(channel, { event: "shipped", data: { order: 1 } });
    expect((await socket.nextOn(channel, "shipped")).data).toEqual({ order: 1 });
    socket.close();
  });

  it("answers a missing, forged or misdirected signature with pusher:subscription_error (AuthError, 401)", async () => {
    const channel = uniqueRoom("private-orders");
    const socket = await PusherTestSocket.open();
    const other = await PusherTestSocket.open();
    const cases = {
      missing: "",
      otherSocket: await pusherSign(other.socketId, channel),
      otherChannel: await pusherSign(socket.socketId, `${channel}-x`),
      wrongSecret: await pusherSign(socket.socketId, channel, undefined, "not-the-secret"),
      garbage: "key:deadbeef",
    };
    for (const auth of Object.values(cases)) {
      const refused = await socket.subscribe(channel, { auth });
      expect(refused).toMatchObject({ event: "pusher:subscription_error", channel, data: { type: "AuthError", status: 401, code: 4009 } });
      expect(typeof refused.data.error).toBe("string");
    }
    // Refused subscriptions get nothing; the connection is still usable.
    await notify(channel, { event: "secret", data: {} });
    expect((await socket.subscribe(channel)).event).toBe("pusher_internal:subscription_succeeded");
    await settle(socket, channel);
    expect(eventsOn(socket, channel, "secret")).toEqual([]);
    socket.close();
    other.close();
  });
});

describe("presence channels", () => {
  const member = (id: string | number, name: string) => ({ user_id: id, user_info: { name } });

  it("lists members on subscribe, announces arrivals once per user and departures after the last connection", async () => {
    const channel = uniqueRoom("presence-team");
    const alice = await PusherTestSocket.open();
    const first = await alice.subscribe(channel, { channelData: member("alice", "Alice") });
    expect(first.data).toEqual({ presence: { ids: ["alice"], hash: { alice: { name: "Alice" } }, count: 1 } });

    const bob1 = await PusherTestSocket.open();
    const joined = await bob1.subscribe(channel, { channelData: member("bob", "Bob") });
    expect(joined.data.presence.count).toBe(2);
    expect(joined.data.presence.hash).toEqual({ alice: { name: "Alice" }, bob: { name: "Bob" } });
    expect(typeof joined.rawData).toBe("string");
    const added = await alice.nextOn(channel, "pusher_internal:member_added");
    expect(added.data).toEqual({ user_id: "bob", user_info: { name: "Bob" } });

    // Bob's second connection is not a new member: nobody hears of it.
    const bob2 = await PusherTestSocket.open();
    expect((await bob2.subscribe(channel, { channelData: member("bob", "Bob") })).data.presence.count).toBe(2);
    bob1.close();
    await bob1.closed();
    await untilConnections(channel, "bob", 1);
    // A departure is announced only after the grace period (200 ms in tests): wait it out before checking there is none.
    await scheduler.wait(400);
    await settle(alice, channel);
    await settle(bob2, channel);
    expect(eventsOn(alice, channel, "pusher_internal:member")).toEqual([]);
    // Bob never hears of himself.
    expect(eventsOn(bob2, channel, "pusher_internal:member")).toEqual([]);

    // His last connection goes: removed (after the presence grace period).
    bob2.close();
    expect((await alice.nextOn(channel, "pusher_internal:member_removed")).data).toEqual({ user_id: "bob" });
    alice.close();
  });

  it("Pusher members and native WebSocket users are one presence", async () => {
    const channel = uniqueRoom("presence-mixed");
    const alice = await PusherTestSocket.open();
    await alice.subscribe(channel, { channelData: member("alice", "Alice") });

    const carol = await TestSocket.open(channel, await tokenFor("carol"));
    const welcome = await carol.next((f) => f.type === "welcome");
    expect(welcome.presence.map((m: any) => m.id).sort()).toEqual(["alice", "carol"]);
    expect((await alice.nextOn(channel, "pusher_internal:member_added")).data).toEqual({ user_id: "carol", user_info: { name: "Carol" } });

    const dave = await PusherTestSocket.open();
    const list = await dave.subscribe(channel, { channelData: member(42, "Dave") });
    expect(list.data.presence.hash).toEqual({ alice: { name: "Alice" }, carol: { name: "Carol" }, "42": { name: "Dave" } });
    expect(await carol.next((f) => f.type === "presence" && f.user.id === "42")).toMatchObject({ action: "join", user: { id: "42", name: "Dave" } });
    expect((await alice.nextOn(channel, "pusher_internal:member_added")).data).toEqual({ user_id: "42", user_info: { name: "Dave" } });

    const response = await get(`/rooms/${channel}/presence`, await tokenFor("carol"));
    expect(((await response.json()) as any).members.map((m: any) => m.id).sort()).toEqual(["42", "alice", "carol"]);

    carol.close();
    expect((await alice.nextOn(channel, "pusher_internal:member_removed")).data).toEqual({ user_id: "carol" });
    for (const s of [alice, dave]) s.close();
  });

  it("refuses presence subscriptions without a usable signed member", async () => {
    const channel = uniqueRoom("presence-bad");
    const socket = await PusherTestSocket.open();
    // Signed without channel_data: there is no member to be.
    expect(await socket.subscribe(channel)).toMatchObject({ event: "pusher:subscription_error", data: { type: "AuthError" } });
    // channel_data changed after signing.
    const signed = await pusherSign(socket.socketId, channel, JSON.stringify(member("alice", "Alice")));
    const tampered = await socket.subscribe(channel, { channelData: member("mallory", "Alice"), auth: signed });
    expect(tampered).toMatchObject({ event: "pusher:subscription_error", data: { type: "AuthError", status: 401 } });
    // No user_id, or user_info over 1 KB, even when signed.
    expect(await socket.subscribe(channel, { channelData: { user_info: {} } })).toMatchObject({ data: { type: "AuthError" } });
    const huge = await socket.subscribe(channel, { channelData: member("alice", "x".repeat(2000)) });
    expect(huge.data.error).toMatch(/1024 bytes/);
    socket.close();
  });
});

describe("client events", () => {
  it("are relayed to the channel's other connections, as sent, never echoed, never stored", async () => {
    const channel = uniqueRoom("private-chat");
    const [a, b, c] = await Promise.all([PusherTestSocket.open(), PusherTestSocket.open(), PusherTestSocket.open()]);
    for (const s of [a, b, c]) await s.subscribe(channel);
    const native = await TestSocket.open(channel, await tokenFor("nina"));
    await native.next((f) => f.type === "welcome");

    a.trigger(channel, "client-typing", { who: "a", n: 1 });
    for (const s of [b, c]) {
      const relayed = await s.nextOn(channel, "client-typing");
      expect(relayed.rawData).toEqual({ who: "a", n: 1 }); // data as the sender gave it, not re-encoded
      expect(relayed).not.toHaveProperty("user_id"); // private channels name no user
    }
    await settle(a, channel);
    expect(eventsOn(a, channel, "client-")).toEqual([]);
    // Not a room event: no seq used, nothing for native clients.
    expect((await roomStatus(channel)).seq).toBe(1); // only settle's marker
    expect(native.messages().map((m) => m.event)).not.toContain("client-typing");
    for (const s of [a, b, c, native]) s.close();
  });

  it("carry the sender's user_id on presence channels", async () => {
    const channel = uniqueRoom("presence-chat");
    const a = await PusherTestSocket.open();
    const b = await PusherTestSocket.open();
    await a.subscribe(channel, { channelData: { user_id: "ann", user_info: {} } });
    await b.subscribe(channel, { channelData: { user_id: "ben", user_info: {} } });
    a.trigger(channel, "client-wave", "hi");
    const relayed = await b.nextOn(channel, "client-wave");
    expect(relayed).toMatchObject({ user_id: "ann", rawData: "hi" });
    for (const s of [a, b]) s.close();
  });

  it("are refused on public channels, unsubscribed channels and over 10 KB", async () => {
    const publicChannel = uniqueRoom("public-chat");
    const privateChannel = uniqueRoom("private-chat");
    const a = await PusherTestSocket.open();
    const b = await PusherTestSocket.open();
    await a.subscribe(publicChannel);
    await b.subscribe(publicChannel);
    a.trigger(publicChannel, "client-x", {});
    expect((await a.next((f) => f.event === "pusher:error")).data.message).toMatch(/private- and presence-/);
    a.trigger(privateChannel, "client-x", {});
    expect((await a.next((f) => f.event === "pusher:error")).data.message).toMatch(/subscribe to/);
    await a.subscribe(privateChannel);
    await b.subscribe(privateChannel);
    a.trigger(privateChannel, "client-big", { blob: "x".repeat(10_300) });
    expect((await a.next((f) => f.event === "pusher:error")).data.message).toMatch(/10240/);
    a.trigger(privateChannel, "client-fits", { blob: "x".repeat(10_000) });
    expect((await b.nextOn(privateChannel, "client-fits")).rawData).toEqual({ blob: "x".repeat(10_000) });
    await settle(b, publicChannel);
    expect(eventsOn(b, publicChannel, "client-")).toEqual([]);
    expect(eventsOn(b, privateChannel, "client-big")).toEqual([]);
    for (const s of [a, b]) s.close();
  });

  it("are limited to 10 per second per connection: the rest get pusher:error 4301 and the socket stays open", async () => {
    const channel = uniqueRoom("private-flood");
    const a = await PusherTestSocket.open();
    const b = await PusherTestSocket.open();
    await a.subscribe(channel);
    await b.subscribe(channel);
    for (let i = 0; i < 15; i++) a.trigger(channel, "client-n", { i });
    const errors: PusherFrame[] = [];
    for (let i = 0; i < 5; i++) errors.push(await a.next((f) => f.event === "pusher:error"));
    expect(errors.every((e) => e.data.code === 4301)).toBe(true);
    const received: number[] = [];
    for (let i = 0; i < 10; i++) received.push((await b.nextOn(channel, "client-n")).rawData as any);
    expect(received.map((d: any) => d.i)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    await settle(b, channel);
    expect(eventsOn(b, channel, "client-n")).toEqual([]);
    expect(a.closeEvent).toBeUndefined();
    for (const s of [a, b]) s.close();
  });
});

describe("excluding the triggering connection", () => {
  it("an event with the trigger's socket_id reaches every Pusher socket but that one, and native clients", async () => {
    const channel = uniqueRoom("private-exclude");
    const a = await PusherTestSocket.open();
    const b = await PusherTestSocket.open();
    await a.subscribe(channel);
    await b.subscribe(channel);
    const native = await TestSocket.open(channel, await tokenFor("nina"));
    await native.next((f) => f.type === "welcome");
    const result = await roomStub(channel).pusherTrigger(channel, { event: "saved", data: '{"id":1}', socketId: a.socketId });
    expect(result.ok).toBe(true);
    expect((await b.nextOn(channel, "saved")).data).toEqual({ id: 1 });
    expect((await native.untilMessages(1))[0]).toMatchObject({ event: "saved", data: { id: 1 } });
    await settle(a, channel);
    expect(eventsOn(a, channel, "saved")).toEqual([]);
    for (const s of [a, b, native]) s.close();
  });
});

describe("channel state for the HTTP API", () => {
  it("counts Pusher connections over every shard and lists presence members, native ones included", async () => {
    const id = crypto.randomUUID().slice(0, 8);
    const presence = `presence-state-${id}`;
    const privateChannel = `private-state-${id}`;
    const sockets = await Promise.all(Array.from({ length: 4 }, () => PusherTestSocket.open()));
    const [alice1, alice2, bob, other] = sockets as [PusherTestSocket, PusherTestSocket, PusherTestSocket, PusherTestSocket];
    await alice1.subscribe(presence, { channelData: { user_id: "alice", user_info: {} } });
    await alice2.subscribe(presence, { channelData: { user_id: "alice", user_info: {} } });
    await bob.subscribe(presence, { channelData: { user_id: "bob", user_info: {} } });
    await other.subscribe(privateChannel);
    const carol = await TestSocket.open(presence, await tokenFor("carol"));
    await carol.next((f) => f.type === "welcome");

    const state = await getPusherChannel(env, presence);
    expect(state.subscriptionCount).toBe(3);
    expect(state.userIds.sort()).toEqual(["alice", "bob", "carol"]);
    expect(await getPusherChannel(env, privateChannel)).toEqual({ name: privateChannel, subscriptionCount: 1, userIds: [] });
    expect(await getPusherChannel(env, `private-nobody-${id}`)).toEqual({ name: `private-nobody-${id}`, subscriptionCount: 0, userIds: [] });

    const listed = await listPusherChannels(env, `presence-state-${id}`);
    expect(listed.map((c) => ({ ...c, userIds: c.userIds.sort() }))).toEqual([{ name: presence, subscriptionCount: 3, userIds: ["alice", "bob", "carol"] }]);
    expect((await listPusherChannels(env)).map((c) => c.name)).toEqual(expect.arrayContaining([presence, privateChannel]));

    // A connection that closes stops counting as soon as its hub has seen the close.
    other.close();
    await other.closed();
    expect((await listPusherChannels(env, `private-state-${id}`))).toEqual([]);
    carol.close();
  });
});
