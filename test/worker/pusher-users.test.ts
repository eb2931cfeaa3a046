/**
 * SPEC §8 user authentication: `pusher:signin` checked against Pusher's
 * `socket_id::user::user_data` signature, `POST /pusher/user-auth` for JWT
 * holders, events to `#server-to-user-<id>` (the SDKs' `sendToUser`) that
 * reach exactly that user's connections on every hub shard, and
 * `terminate_connections`; across hub and room eviction; bad input on each
 * new route.
 */
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterAll, describe, expect, it } from "vitest";
import { call, tokenFor } from "./helpers";
import { pusherApi, trigger } from "./pusher-api-signer";
import { evictHubs, hubStub, HUB_SHARDS, PusherTestSocket, pusherSignUser, settleHubs } from "./pusher-support";
import { eventually, expectError, roomStub } from "./support";

afterAll(settleHubs);

const uniqueUser = (name: string) => `${name}-${crypto.randomUUID().slice(0, 8)}`;
const userChannel = (id: string) => `#server-to-user-${id}`;

/** `pusher.sendToUser(id, event, data)` as the SDK sends it: a trigger to the user's channel. */
function sendToUser(userId: string, event: string, data: unknown, options: Parameters<typeof trigger>[1] = {}): Promise<Response> {
  return trigger({ name: event, data: JSON.stringify(data), channels: [userChannel(userId)] }, options);
}

/** `pusher.terminateUserConnections(id)`: POST with an empty JSON object. */
function terminate(userId: string, options: Parameters<typeof pusherApi>[2] = {}): Promise<Response> {
  return pusherApi("POST", `/users/${userId}/terminate_connections`, { body: {}, ...options });
}

/** Opens a socket and signs it in; waits until its user channel subscription is live. */
async function signedIn(userId: string): Promise<PusherTestSocket> {
  const socket = await PusherTestSocket.open();
  expect(await socket.signIn(userId)).toMatchObject({ event: "pusher:signin_success" });
  await socket.nextOn(userChannel(userId), "pusher_internal:subscription_succeeded");
  return socket;
}

/** Hub shards that hold a socket on the user's channel. */
async function shardsOf(userId: string): Promise<number[]> {
  const held = await Promise.all(Array.from({ length: HUB_SHARDS }, (_, shard) => hubStub(shard).socketsOn(userChannel(userId))));
  return held.flatMap((ids, shard) => (ids.length > 0 ? [shard] : []));
}

describe("pusher:signin", () => {
  it("accepts Pusher's signature over socket_id::user::user_data and echoes user_data", async () => {
    const user = uniqueUser("alice");
    const socket = await PusherTestSocket.open();
    const userData = JSON.stringify({ id: user, user_info: { name: "Alice" }, watchlist: [] });
    const success = await socket.signIn(user, { userData });
    expect(success).toMatchObject({ event: "pusher:signin_success", data: { user_data: userData } });
    expect(typeof success.rawData).toBe("string"); // Pusher's server frames carry data as a JSON string
    // The server puts the socket on its user channel; pusher-js's own subscribe to it succeeds as well.
    await socket.nextOn(userChannel(user), "pusher_internal:subscription_succeeded");
    expect(await socket.subscribe(userChannel(user))).toMatchObject({ event: "pusher_internal:subscription_succeeded" });
    socket.close();
  });

  it("closes with 4009 on a wrong signature, another socket's signature, or user_data without an id", async () => {
    const user = uniqueUser("mallory");
    const forged = await PusherTestSocket.open();
    expect(await forged.signIn(user, { auth: `${env.PUSHER_KEY}:${"0".repeat(64)}` })).toMatchObject({ event: "pusher:error", data: { code: 4009 } });
    expect((await forged.closed()).code).toBe(4009);

    const replayed = await PusherTestSocket.open();
    const userData = JSON.stringify({ id: user });
    const stolen = await pusherSignUser("1.1", userData);
    expect(await replayed.signIn(user, { userData, auth: stolen })).toMatchObject({ event: "pusher:error", data: { code: 4009 } });
    expect((await replayed.closed()).code).toBe(4009);

    const anonymous = await PusherTestSocket.open();
    expect(await anonymous.signIn(user, { userData: JSON.stringify({ user_info: {} }) })).toMatchObject({ event: "pusher:error", data: { code: 4009 } });
    expect((await anonymous.closed()).code).toBe(4009);
    expect(await shardsOf(user)).toEqual([]);
  });

  it("refuses a subscription to another user's channel, and to one's own before signing in", async () => {
    const alice = uniqueUser("alice");
    const socket = await PusherTestSocket.open();
    expect(await socket.subscribe(userChannel(alice))).toMatchObject({ event: "pusher:subscription_error", data: { type: "AuthError", status: 403 } });
    await socket.signIn(uniqueUser("bob"));
    expect(await socket.subscribe(userChannel(alice))).toMatchObject({ event: "pusher:subscription_error", data: { type: "AuthError", status: 403 } });
    socket.close();
  });

  it("keeps user channels out of the channel list of the HTTP API", async () => {
    const user = uniqueUser("hidden");
    const socket = await signedIn(user);
    const listed = (await (await pusherApi("GET", "/channels")).json()) as { channels: Record<string, unknown> };
    expect(Object.keys(listed.channels).filter((name) => name.startsWith("#"))).toEqual([]);
    // …while the hubs do hold it.
    expect((await shardsOf(user)).length).toBe(1);
    socket.close();
  });
});

describe("sendToUser", () => {
  it("reaches every connection of the user, on several shards, and no one else; nothing is stored", async () => {
    const alice = uniqueUser("alice");
    const bob = uniqueUser("bob");
    // Eight connections land on random shards: all on one shard has a chance of 8 / 8^8.
    const alices = await Promise.all(Array.from({ length: 8 }, () => signedIn(alice)));
    const bobs = await Promise.all([signedIn(bob), signedIn(bob)]);
    expect((await shardsOf(alice)).length).toBeGreaterThan(1);

    expect((await sendToUser(alice, "order-shipped", { order: 42 })).status).toBe(200);
    for (const socket of alices) {
      expect(await socket.nextOn(userChannel(alice), "order-shipped")).toMatchObject({ data: { order: 42 }, rawData: '{"order":42}' });
    }
    expect((await sendToUser(bob, "marker", {})).status).toBe(200);
    for (const socket of bobs) {
      await socket.nextOn(userChannel(bob), "marker");
      expect(socket.frames.filter((f) => f.event === "order-shipped")).toEqual([]);
    }
    // Not a room event: the user's channel room has no log.
    const status = await roomStub(userChannel(alice)).status(userChannel(alice));
    expect(status.seq).toBe(0);
    for (const socket of [...alices, ...bobs]) socket.close();
  });

  it("skips the connection named by socket_id", async () => {
    const user = uniqueUser("carol");
    const [first, second] = await Promise.all([signedIn(user), signedIn(user)]);
    expect((await sendToUser(user, "hello", { n: 1 }, {})).status).toBe(200);
    await first!.nextOn(userChannel(user), "hello");
    await second!.nextOn(userChannel(user), "hello");
    const response = await trigger({ name: "again", data: "{}", channels: [userChannel(user)], socket_id: first!.socketId });
    expect(response.status).toBe(200);
    await second!.nextOn(userChannel(user), "again");
    expect((await sendToUser(user, "marker", {})).status).toBe(200);
    await first!.nextOn(userChannel(user), "marker");
    expect(first!.frames.filter((f) => f.event === "again")).toEqual([]);
    first!.close();
    second!.close();
  });

  it("answers 200 for a user with no connections", async () => {
    expect((await sendToUser(uniqueUser("nobody"), "hello", {})).status).toBe(200);
  });

  it("takes user channels in batch_events too, in order", async () => {
    const user = uniqueUser("frank");
    const socket = await signedIn(user);
    const batch = [1, 2, 3].map((n) => ({ name: "step", channel: userChannel(user), data: JSON.stringify({ n }) }));
    expect((await pusherApi("POST", "/batch_events", { body: { batch } })).status).toBe(200);
    const steps = [await socket.nextOn(userChannel(user), "step"), await socket.nextOn(userChannel(user), "step"), await socket.nextOn(userChannel(user), "step")];
    expect(steps.map((f) => f.data)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    socket.close();
  });

  it("survives the hubs and the user's room being evicted", async () => {
    const user = uniqueUser("dora");
    const sockets = await Promise.all([signedIn(user), signedIn(user), signedIn(user)]);
    await evictHubs();
    await evictDurableObject(roomStub(userChannel(user)));
    expect((await sendToUser(user, "after-eviction", { ok: true })).status).toBe(200);
    for (const socket of sockets) expect((await socket.nextOn(userChannel(user), "after-eviction")).data).toEqual({ ok: true });
    // The sign-in itself survived in the socket's attachment: its own channel is still allowed.
    expect(await sockets[0]!.subscribe(userChannel(user))).toMatchObject({ event: "pusher_internal:subscription_succeeded" });
    // A closed socket leaves the user's index.
    sockets[0]!.close();
    await sockets[0]!.closed();
    const indexed = () => runInDurableObject(roomStub(userChannel(user)), (instance) => (instance as any).pusher.subscriptionCount as number);
    await eventually(async () => (await indexed()) === 2, "the closed socket to leave the user's index");
    for (const socket of sockets.slice(1)) socket.close();
  });
});

describe("terminate_connections", () => {
  it("closes every connection of the user with 4009, on every shard, and leaves others open", async () => {
    const alice = uniqueUser("alice");
    const bob = uniqueUser("bob");
    const alices = await Promise.all(Array.from({ length: 6 }, () => signedIn(alice)));
    const bobSocket = await signedIn(bob);
    const response = await terminate(alice);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({});
    for (const socket of alices) {
      expect(await socket.next((f) => f.event === "pusher:error")).toMatchObject({ data: { code: 4009 } });
      expect((await socket.closed()).code).toBe(4009);
    }
    expect((await sendToUser(bob, "still-here", {})).status).toBe(200);
    await bobSocket.nextOn(userChannel(bob), "still-here");
    bobSocket.close();
  });

  it("answers 200 for a user with no connections", async () => {
    expect((await terminate(uniqueUser("nobody"))).status).toBe(200);
  });
});

describe("POST /pusher/user-auth", () => {
  const SOCKET_ID = "1234.5678";
  const post = (fields: Record<string, string>, token?: string, contentType = "application/x-www-form-urlencoded") =>
    call("/pusher/user-auth", {
      method: "POST",
      headers: { "content-type": contentType, ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: contentType === "application/json" ? JSON.stringify(fields) : new URLSearchParams(fields).toString(),
    });

  it("signs user_data naming the JWT's sub, as Pusher's docs compute it", async () => {
    const response = await post({ socket_id: SOCKET_ID }, await tokenFor("alice", { name: "Alice Liddell" }));
    expect(response.status).toBe(200);
    const body = (await response.json()) as { auth: string; user_data: string };
    expect(JSON.parse(body.user_data)).toEqual({ id: "alice", user_info: { name: "Alice Liddell" } });
    expect(body.auth).toBe(await pusherSignUser(SOCKET_ID, body.user_data));
  });

  it("opens a real sign-in; the token may come as a form field", async () => {
    const user = uniqueUser("erin");
    const socket = await PusherTestSocket.open();
    const response = await post({ socket_id: socket.socketId, token: await tokenFor(user, { rooms: [] }) });
    const { auth, user_data } = (await response.json()) as { auth: string; user_data: string };
    expect(await socket.signIn(user, { auth, userData: user_data })).toMatchObject({ event: "pusher:signin_success" });
    socket.close();
  });

  it("refuses a missing or bad token, a bad socket_id, other content types and large bodies", async () => {
    const token = await tokenFor("alice");
    await expectError(await post({ socket_id: SOCKET_ID }), 401, "missing_token");
    await expectError(await post({ socket_id: SOCKET_ID }, `${token}x`), 401, "invalid_token");
    expect(await expectError(await post({ socket_id: "abc" }, token), 400, "invalid_body")).toMatch(/socket_id/);
    expect(await expectError(await post({}, token), 400, "invalid_body")).toMatch(/socket_id/);
    await expectError(await post({ socket_id: SOCKET_ID }, token, "text/plain"), 415, "unsupported_media_type");
    await expectError(await post({ socket_id: SOCKET_ID, pad: "x".repeat(9000) }, token), 413, "payload_too_large");
  });
});

describe("bad input on the user routes: Pusher's status codes, nothing delivered", () => {
  const now = () => Math.floor(Date.now() / 1000);
  const cases: [string, (user: string) => Promise<Response>, number][] = [
    ["an unsigned sendToUser", (user) => trigger({ name: "bad", data: "{}", channels: [userChannel(user)] }, { omit: ["auth_signature"] }), 401],
    ["a sendToUser with a stale timestamp", (user) => sendToUser(user, "bad", {}, { timestamp: now() - 601 }), 401],
    ["a sendToUser with a wrong body_md5", (user) => sendToUser(user, "bad", {}, { sendBody: JSON.stringify({ name: "bad", data: "{\"x\":1}", channels: [userChannel(user)] }) }), 401],
    ["a sendToUser over 10 KB", (user) => trigger({ name: "bad", data: JSON.stringify({ pad: "x".repeat(10_240) }), channels: [userChannel(user)] }), 413],
    ["an unsigned terminate", (user) => terminate(user, { omit: ["auth_signature"] }), 401],
    ["a terminate with a stale timestamp", (user) => terminate(user, { timestamp: now() - 601 }), 401],
    ["a terminate with a wrong body_md5", (user) => terminate(user, { sendBody: '{"a":1}' }), 401],
    ["a terminate with an oversized body", (user) => terminate(user, { body: { pad: "x".repeat(2000) } }), 413],
    ["a terminate for another app", (user) => terminate(user, { appId: "1" }), 404],
  ];
  for (const [what, send, status] of cases) {
    it(`refuses ${what} with ${status}`, async () => {
      const user = uniqueUser("victim");
      const socket = await signedIn(user);
      expect((await send(user)).status).toBe(status);
      // The user's connection is still open and got nothing: the next event is the first it sees.
      expect((await sendToUser(user, "marker", {})).status).toBe(200);
      await socket.nextOn(userChannel(user), "marker");
      expect(socket.frames.filter((f) => f.event === "bad" || f.event === "pusher:error")).toEqual([]);
      expect(socket.closeEvent).toBeUndefined();
      socket.close();
    });
  }

  it("refuses an invalid user id: 400 on both routes", async () => {
    const tooLong = "u".repeat(129);
    await expectError(await sendToUser(tooLong, "bad", {}), 400, "invalid_room");
    await expectError(await trigger({ name: "bad", data: "{}", channels: ["#server-to-user-"] }), 400, "invalid_room");
    await expectError(await terminate(tooLong), 400, "invalid_query");
  });
});
