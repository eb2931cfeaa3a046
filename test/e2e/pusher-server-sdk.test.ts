/**
 * The official `pusher` server SDK (pusher-http-node), unmodified, against
 * `wrangler dev` (SPEC §8): what an app that broadcasts with Pusher gets by
 * changing its host and port. Triggered events enter the rooms with seqs and
 * reach native WebSocket and long-poll clients; pusher-js clients get them
 * too, except the one whose socket_id the trigger excludes; the channel
 * queries describe who is subscribed over the Pusher protocol.
 */
import { describe, expect, inject, it } from "vitest";
import { tokenFor, WsClient } from "./clients";
import { connectPusherJs, Received, sdkStatus, serverSdk, subscribed } from "./pusher-server-sdk-clients";
import { Api, eventually, uniqueRoom, within } from "./transports";

const base = inject("serverUrl");
const api = new Api(base);
const sdk = serverSdk(base);

/** A native WebSocket on the room, past its welcome frame. */
async function nativeSocket(room: string): Promise<WsClient> {
  const ws = await WsClient.open(`${api.wsBase}/rooms/${encodeURIComponent(room)}/ws?token=${await tokenFor("native")}`);
  await ws.until((frames) => frames.find((f) => f.type === "welcome"), "welcome");
  return ws;
}

/** A long-poll held on the room until its next event (the room reports it as a subscriber first). */
async function heldLongPoll(room: string, token: string): Promise<{ answer: ReturnType<Api["messages"]> }> {
  const before = (await api.status(room)).subscribers;
  const answer = api.messages(room, token, { after: 0, wait: 20 });
  await api.untilStatus(room, (status) => status.subscribers > before, "the long-poll to be held");
  return { answer };
}

describe("the pusher server SDK against wrangler dev", () => {
  it("trigger to one channel reaches a native WebSocket and a held long-poll, with the same seq", async () => {
    const channel = uniqueRoom("sdk-one");
    const token = await tokenFor("reader");
    const ws = await nativeSocket(channel);
    const poll = await heldLongPoll(channel, token);
    const response = await sdk.trigger(channel, "order-shipped", { order: 42, items: ["a"] });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({});
    const [live] = await ws.untilMessages(1);
    expect(live).toMatchObject({ room: channel, seq: 1, event: "order-shipped", data: { order: 42, items: ["a"] } });
    expect(live).not.toHaveProperty("from");
    const polled = await within(poll.answer, 10_000, "the long-poll answer");
    expect(polled.status).toBe(200);
    expect(polled.body).toEqual({ messages: [live], seq: 1 });
    ws.close();
  });

  it("events triggered one after another arrive in order with consecutive seqs on both transports", async () => {
    const channel = uniqueRoom("sdk-order");
    const ws = await nativeSocket(channel);
    for (let n = 1; n <= 5; n++) await sdk.trigger(channel, "tick", { n });
    const live = await ws.untilMessages(5);
    expect(live.map((e) => [e.seq, e.data.n])).toEqual([[1, 1], [2, 2], [3, 3], [4, 4], [5, 5]]);
    const page = await api.messages(channel, await tokenFor("reader"), { after: 0 });
    expect(page.body.messages).toEqual(live);
    ws.close();
  });

  it("trigger to many channels puts one event in each room", async () => {
    const channels = Array.from({ length: 20 }, (_, i) => uniqueRoom(`sdk-many-${i}`));
    const sockets = await Promise.all(channels.slice(0, 3).map(nativeSocket));
    expect((await sdk.trigger(channels, "broadcast", "plain text")).status).toBe(200);
    for (const ws of sockets) {
      const [event] = await ws.untilMessages(1);
      expect(event).toMatchObject({ seq: 1, event: "broadcast", data: { pusherData: "plain text" } });
      ws.close();
    }
    const statuses = await Promise.all(channels.map((channel) => api.status(channel)));
    expect(statuses.map((s) => s.seq)).toEqual(channels.map(() => 1));
  });

  it("triggerBatch delivers every event, in order per channel", async () => {
    const a = uniqueRoom("sdk-batch-a");
    const b = uniqueRoom("sdk-batch-b");
    const wsA = await nativeSocket(a);
    const response = await sdk.triggerBatch([
      { channel: a, name: "first", data: { n: 1 } },
      { channel: b, name: "other", data: { n: 2 } },
      { channel: a, name: "second", data: { n: 3 } },
    ]);
    expect(response.status).toBe(200);
    expect((await wsA.untilMessages(2)).map((e) => [e.seq, e.event, e.data.n])).toEqual([[1, "first", 1], [2, "second", 3]]);
    expect((await api.history(b, await tokenFor("reader"))).map((e) => [e.seq, e.event])).toEqual([[1, "other"]]);
    wsA.close();
  });

  it("a bad secret is answered 401 and delivers nothing", async () => {
    const channel = uniqueRoom("sdk-bad");
    const ws = await nativeSocket(channel);
    expect(await sdkStatus(serverSdk(base, "not-the-secret").trigger(channel, "forged", { evil: true }))).toBe(401);
    expect(await sdkStatus(serverSdk(base, "not-the-secret").triggerBatch([{ channel, name: "forged", data: {} }]))).toBe(401);
    // The next good event is the first the socket sees, with seq 1: nothing came before it.
    await sdk.trigger(channel, "genuine", {});
    const [first] = await ws.untilMessages(1);
    expect(first).toMatchObject({ seq: 1, event: "genuine" });
    expect(ws.messages()).toHaveLength(1);
    ws.close();
  });

  it("data over 10 KB is refused with 413", async () => {
    const channel = uniqueRoom("sdk-big");
    expect(await sdkStatus(sdk.trigger(channel, "big", "x".repeat(10_241)))).toBe(413);
    expect((await api.status(channel)).seq).toBe(0);
  });
});

describe("the pusher server SDK with pusher-js subscribers", () => {
  it("socket_id keeps an event from the connection that caused it, while others get it", async () => {
    const channel = uniqueRoom("sdk-except");
    const author = await connectPusherJs(base);
    const other = await connectPusherJs(base);
    try {
      const authorEvents = new Received<{ n: number }>(await subscribed(author.pusher, channel), "update");
      const otherEvents = new Received<{ n: number }>(await subscribed(other.pusher, channel), "update");
      await sdk.trigger(channel, "update", { n: 1 }, { socket_id: author.socketId });
      await sdk.trigger(channel, "update", { n: 2 });
      expect(await otherEvents.until(2)).toEqual([{ n: 1 }, { n: 2 }]);
      // Events on a channel arrive in order: had the author got n=1, it would precede n=2.
      expect(await authorEvents.until(1)).toEqual([{ n: 2 }]);
    } finally {
      author.pusher.disconnect();
      other.pusher.disconnect();
    }
  });

  it("channel queries describe pusher-js subscribers: /channels, /channels/:name, /users", async () => {
    const open = uniqueRoom("sdk-query");
    const presence = uniqueRoom("presence-sdk-query");
    const alice = await connectPusherJs(base, await tokenFor("alice"));
    const bob = await connectPusherJs(base, await tokenFor("bob"));
    try {
      await Promise.all([subscribed(alice.pusher, open), subscribed(bob.pusher, open), subscribed(alice.pusher, presence), subscribed(bob.pusher, presence)]);
      const json = async (response: Promise<{ json(): Promise<unknown> }>) => (await response).json() as Promise<any>;

      const one = await json(sdk.get({ path: `/channels/${open}`, params: { info: "subscription_count" } }));
      expect(one).toEqual({ occupied: true, subscription_count: 2 });
      const presenceInfo = await json(sdk.get({ path: `/channels/${presence}`, params: { info: "user_count,subscription_count" } }));
      expect(presenceInfo).toEqual({ occupied: true, user_count: 2, subscription_count: 2 });

      const users = await json(sdk.get({ path: `/channels/${presence}/users` }));
      expect(users.users.map((u: { id: string }) => u.id).sort()).toEqual(["alice", "bob"]);

      const all = await json(sdk.get({ path: "/channels", params: { filter_by_prefix: "sdk-query" } }));
      expect(all.channels).toHaveProperty([open]);
      expect(all.channels).not.toHaveProperty([presence]);
      const presences = await json(sdk.get({ path: "/channels", params: { filter_by_prefix: "presence-", info: "user_count" } }));
      expect(presences.channels[presence]).toEqual({ user_count: 2 });

      expect(await sdkStatus(sdk.get({ path: "/channels", params: { info: "user_count" } }))).toBe(400);
      expect(await sdkStatus(sdk.get({ path: `/channels/${open}/users` }))).toBe(400);

      bob.pusher.unsubscribe(open);
      // No event tells a third party that the unsubscribe was processed: re-ask (bounded) until it shows.
      const after = await eventually(async () => {
        const info = await json(sdk.get({ path: `/channels/${open}`, params: { info: "subscription_count" } }));
        return info.subscription_count === 1 ? info : undefined;
      }, "bob's unsubscribe to show in the channel's count");
      expect(after).toEqual({ occupied: true, subscription_count: 1 });
    } finally {
      alice.pusher.disconnect();
      bob.pusher.disconnect();
    }
  });
});
