/**
 * SPEC §8 with the real clients, unmodified, against `wrangler dev`:
 * pusher-js 8 (its Node build, whose default `ajax` authorizer posts to
 * `/pusher/auth` with its bundled XMLHttpRequest) and Laravel Echo 2 on top
 * of it. Native clients and Pusher clients share the rooms.
 */
import Echo from "laravel-echo";
import Pusher, { type Channel, type PresenceChannel } from "pusher-js";
import { afterEach, describe, expect, inject, it } from "vitest";
import { postJson, tokenFor, WsClient } from "./clients";
import { echoOptions } from "./pusher-server-sdk-clients";
import { DEFAULT_SECRETS } from "./server";

const base = inject("serverUrl");
const port = Number(new URL(base).port);

const clients: { disconnect(): void }[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.disconnect();
});

/** The options a pusher-js user points at this service (README, docs/pusher.md). */
function pusherOptions(jwt?: string) {
  return {
    wsHost: "127.0.0.1",
    wsPort: port,
    forceTLS: false,
    enabledTransports: ["ws" as const],
    cluster: "local",
    channelAuthorization: {
      endpoint: `${base}/pusher/auth`,
      transport: "ajax" as const,
      headers: jwt ? { Authorization: `Bearer ${jwt}` } : {},
    },
  };
}

async function connect(jwt?: string): Promise<Pusher> {
  const pusher = new Pusher(DEFAULT_SECRETS.PUSHER_KEY, pusherOptions(jwt));
  clients.push(pusher);
  await new Promise<void>((resolve, reject) => {
    pusher.connection.bind("connected", () => resolve());
    pusher.connection.bind("failed", () => reject(new Error("pusher-js could not connect")));
  });
  return pusher;
}

/** The next time `event` fires on a channel (or the connection), with its data and metadata. */
function once<T = any>(target: { bind(event: string, cb: (data: any, meta?: any) => void): unknown; unbind(event: string, cb: (data: any, meta?: any) => void): unknown }, event: string): Promise<{ data: T; meta?: any }> {
  return new Promise((resolve) => {
    const handler = (data: T, meta?: any) => {
      target.unbind(event, handler);
      resolve({ data, meta });
    };
    target.bind(event, handler);
  });
}

async function subscribed<C extends Channel>(channel: C): Promise<C> {
  if (channel.subscribed) return channel;
  await new Promise<void>((resolve, reject) => {
    channel.bind("pusher:subscription_succeeded", () => resolve());
    channel.bind("pusher:subscription_error", (error: unknown) => reject(new Error(`subscription failed: ${JSON.stringify(error)}`)));
  });
  return channel;
}

function notify(room: string, event: string, data: Record<string, unknown>): Promise<Response> {
  return postJson(`${base}/rooms/${encodeURIComponent(room)}/notify`, { event, data }, DEFAULT_SECRETS.NOTIFY_SECRET);
}

const unique = (prefix: string) => `${prefix}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;

describe("pusher-js against the service", () => {
  it("connects and gets a Pusher socket_id", async () => {
    const pusher = await connect();
    expect(pusher.connection.socket_id).toMatch(/^\d+\.\d+$/);
  });

  it("public channel: a native notify arrives as a Pusher event", async () => {
    const room = unique("e2e-pub");
    const pusher = await connect();
    const channel = await subscribed(pusher.subscribe(room));
    const received = once(channel, "ticket_assigned");
    expect((await notify(room, "ticket_assigned", { ticket: 42 })).status).toBe(202);
    expect((await received).data).toEqual({ ticket: 42 });
  });

  it("private channel: authorized through /pusher/auth with the JWT, then receives events", async () => {
    const room = unique("private-e2e");
    const pusher = await connect(await tokenFor("alice", { rooms: ["private-e2e-*"] }));
    const channel = await subscribed(pusher.subscribe(room));
    const received = once(channel, "order.shipped");
    await notify(room, "order.shipped", { order: 7 });
    expect((await received).data).toEqual({ order: 7 });
  });

  it("a token that does not grant the channel gives pusher:subscription_error with the status", async () => {
    const pusher = await connect(await tokenFor("mallory", { rooms: ["something-else"] }));
    const channel = pusher.subscribe(unique("private-e2e"));
    const { data } = await once(channel, "pusher:subscription_error");
    expect(data).toMatchObject({ type: "AuthError", status: 403 });
  });

  it("presence channel: members from the JWTs, member_added and member_removed between two clients", async () => {
    const room = unique("presence-e2e");
    const alice = await connect(await tokenFor("alice", { rooms: [room], name: "Alice" }));
    const aliceChannel = (await subscribed(alice.subscribe(room))) as PresenceChannel;
    expect(aliceChannel.members.count).toBe(1);
    expect(aliceChannel.members.me).toEqual({ id: "alice", info: { name: "Alice" } });

    const added = once(aliceChannel, "pusher:member_added");
    const bob = await connect(await tokenFor("bob", { rooms: [room], name: "Bob" }));
    const bobChannel = (await subscribed(bob.subscribe(room))) as PresenceChannel;
    expect((await added).data).toEqual({ id: "bob", info: { name: "Bob" } });
    expect(bobChannel.members.count).toBe(2);
    const ids: string[] = [];
    bobChannel.members.each((member: { id: string }) => ids.push(member.id));
    expect(ids.sort()).toEqual(["alice", "bob"]);

    const removed = once(aliceChannel, "pusher:member_removed");
    bob.disconnect();
    expect((await removed).data).toEqual({ id: "bob", info: { name: "Bob" } });
    expect(aliceChannel.members.count).toBe(1);
  });

  it("client events go between two pusher-js clients, not back to the sender and not to native clients", async () => {
    const room = unique("private-e2e-chat");
    const jwt = await tokenFor("alice", { rooms: ["private-e2e-*"] });
    const [a, b] = [await connect(jwt), await connect(jwt)];
    const channelA = await subscribed(a.subscribe(room));
    const channelB = await subscribed(b.subscribe(room));
    const native = await WsClient.open(`${base.replace("http", "ws")}/rooms/${room}/ws?token=${jwt}`);
    await native.until((frames) => frames.find((f) => f.type === "welcome"), "welcome");

    const echoed: unknown[] = [];
    channelA.bind("client-typing", (data: unknown) => echoed.push(data));
    const received = once(channelB, "client-typing");
    expect(channelA.trigger("client-typing", { typing: true })).toBe(true);
    expect((await received).data).toEqual({ typing: true });

    // A room event after it: once it has reached both, the client event would have too.
    const markerA = once(channelA, "marker");
    await notify(room, "marker", {});
    await markerA;
    await native.until((frames) => frames.find((f) => f.type === "message" && f.message.event === "marker"), "marker");
    expect(echoed).toEqual([]);
    expect(native.messages().map((m) => m.event)).toEqual(["marker"]);
    native.close();
  });

  it("a native chat message reaches pusher-js with the sender as user_id", async () => {
    const room = unique("presence-e2e-chat");
    const jwt = await tokenFor("carol", { rooms: [room], name: "Carol" });
    const pusher = await connect(jwt);
    const channel = await subscribed(pusher.subscribe(room));
    const received = once(channel, "message");
    const response = await postJson(`${base}/rooms/${room}/messages`, { data: { text: "hello pusher" } }, await tokenFor("dave", { rooms: [room] }));
    expect(response.status).toBe(201);
    const { data, meta } = await received;
    expect(data).toEqual({ text: "hello pusher" });
    expect(meta).toEqual({ user_id: "dave" });
  });
});

describe("Laravel Echo on pusher-js", () => {
  it("echo.private(...).listen('.shipped') receives an event notified natively into private-orders…", async () => {
    const suffix = unique("orders");
    const echo = new Echo(echoOptions(base, await tokenFor("alice", { rooms: [`private-${suffix}`] })));
    clients.push(echo);
    const shipped = new Promise<unknown>((resolve) => echo.private(suffix).listen(".shipped", resolve));
    const channel = echo.connector.pusher.channel(`private-${suffix}`);
    await subscribed(channel);
    await notify(`private-${suffix}`, "shipped", { order: 1, status: "shipped" });
    expect(await shipped).toEqual({ order: 1, status: "shipped" });
  });
});
