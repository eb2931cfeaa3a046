/**
 * SPEC §8, the Pusher WebSocket: connecting, pinging, refusals, public
 * channels and the room → Pusher direction (a native notify reaches a
 * Pusher socket; one socket on many channels).
 */
import { env } from "cloudflare:workers";
import { afterAll, describe, expect, it } from "vitest";
import { call, notify, postJson, tokenFor } from "./helpers";
import { PusherTestSocket, settleHubs } from "./pusher-support";
import { expectError, uniqueRoom } from "./support";

afterAll(settleHubs);

describe("connecting", () => {
  it("sends connection_established with a Pusher socket_id and activity_timeout, as a JSON string", async () => {
    const socket = await PusherTestSocket.connect();
    const established = await socket.next();
    expect(established.event).toBe("pusher:connection_established");
    expect(typeof established.rawData).toBe("string");
    expect(established.data.socket_id).toMatch(/^\d+\.\d+$/);
    expect(established.data.activity_timeout).toBe(120);
    socket.close();
  });

  it("gives every connection its own socket_id", async () => {
    const sockets = await Promise.all(Array.from({ length: 5 }, () => PusherTestSocket.open()));
    expect(new Set(sockets.map((s) => s.socketId)).size).toBe(5);
    for (const s of sockets) s.close();
  });

  it("answers pusher-js's ping and other spellings of it with pusher:pong", async () => {
    const socket = await PusherTestSocket.open();
    socket.send('{"event":"pusher:ping","data":{}}'); // pusher-js, byte for byte (answered by the runtime)
    expect((await socket.next()).event).toBe("pusher:pong");
    socket.send({ data: "{}", event: "pusher:ping" }); // another client's spelling
    expect((await socket.next()).event).toBe("pusher:pong");
    socket.close();
  });

  it("refuses a wrong app key with pusher:error 4001 and close code 4001", async () => {
    const socket = await PusherTestSocket.connect("/app/not-our-key?protocol=7");
    const error = await socket.next();
    expect(error).toMatchObject({ event: "pusher:error", data: { code: 4001 } });
    expect(error.data.message).toMatch(/not-our-key/);
    expect((await socket.closed()).code).toBe(4001);
  });

  it("refuses another protocol version with 4007", async () => {
    const socket = await PusherTestSocket.connect(`/app/${env.PUSHER_KEY}?protocol=5`);
    expect(await socket.next()).toMatchObject({ event: "pusher:error", data: { code: 4007 } });
    expect((await socket.closed()).code).toBe(4007);
  });

  it("answers a plain GET with 426 and refuses a browser from an origin not in CORS_ORIGINS with 403", async () => {
    await expectError(await call(`/app/${env.PUSHER_KEY}?protocol=7`), 426, "upgrade_required");
    const response = await call(`/app/${env.PUSHER_KEY}?protocol=7`, { headers: { Upgrade: "websocket", Origin: "https://evil.example" } });
    await expectError(response, 403, "forbidden_origin");
    const allowed = await PusherTestSocket.connect(`/app/${env.PUSHER_KEY}?protocol=7`, { Origin: "https://app.example" });
    expect((await allowed.next()).event).toBe("pusher:connection_established");
    allowed.close();
  });

  it("answers malformed frames with pusher:error and keeps the connection", async () => {
    const socket = await PusherTestSocket.open();
    socket.send("not json");
    expect(await socket.next()).toMatchObject({ event: "pusher:error", data: { code: null } });
    socket.send({ event: "pusher:subscribe", data: {} });
    expect(await socket.next()).toMatchObject({ event: "pusher:error", data: { code: null } });
    socket.send({ event: "pusher:signin", data: {} });
    expect(await socket.next()).toMatchObject({ event: "pusher:error", data: { code: null, message: expect.stringMatching(/^pusher:signin: .*auth/) } });
    socket.send({ event: "pusher:watchlist", data: {} });
    expect((await socket.next()).data.message).toMatch(/not supported/);
    socket.send("x".repeat(30_000));
    expect((await socket.next()).data.message).toMatch(/limited/);
    const room = uniqueRoom("ps-still-open");
    expect((await socket.subscribe(room)).event).toBe("pusher_internal:subscription_succeeded");
    socket.close();
  });
});

describe("public channels", () => {
  it("subscribes without auth and receives a native notify as a Pusher event", async () => {
    const room = uniqueRoom("ps-public");
    const socket = await PusherTestSocket.open();
    const succeeded = await socket.subscribe(room);
    expect(succeeded).toMatchObject({ event: "pusher_internal:subscription_succeeded", channel: room });
    expect((await notify(room, { event: "order.shipped", data: { order: 7 } })).status).toBe(202);
    const event = await socket.nextOn(room, "order.shipped");
    expect(typeof event.rawData).toBe("string"); // Pusher events carry data as a JSON string
    expect(event.data).toEqual({ order: 7 });
    expect(event).not.toHaveProperty("user_id"); // notify names no sender
    socket.close();
  });

  it("puts the sender's id in user_id for a chat message, and keeps the room's order", async () => {
    const room = uniqueRoom("ps-order");
    const socket = await PusherTestSocket.open();
    await socket.subscribe(room);
    const token = await tokenFor("alice");
    for (let i = 1; i <= 5; i++) expect((await postJson(`/rooms/${room}/messages`, { data: { text: `m${i}` } }, token)).status).toBe(201);
    const texts: string[] = [];
    for (let i = 1; i <= 5; i++) {
      const event = await socket.nextOn(room, "message");
      expect(event.user_id).toBe("alice");
      texts.push(event.data.text);
    }
    expect(texts).toEqual(["m1", "m2", "m3", "m4", "m5"]);
    socket.close();
  });

  it("gets events only after subscribing, and none after unsubscribing", async () => {
    const room = uniqueRoom("ps-unsub");
    await notify(room, { event: "before", data: {} });
    const socket = await PusherTestSocket.open();
    await socket.subscribe(room);
    await notify(room, { event: "during", data: {} });
    await socket.nextOn(room, "during");
    socket.send({ event: "pusher:unsubscribe", data: { channel: room } });
    // A second channel's event after the unsubscribe marks where the first one's would have arrived.
    const marker = uniqueRoom("ps-marker");
    await socket.subscribe(marker);
    await notify(room, { event: "after", data: {} });
    await notify(marker, { event: "marker", data: {} });
    await socket.nextOn(marker, "marker");
    expect(socket.frames.filter((f) => f.channel === room).map((f) => f.event)).toEqual([]);
    socket.close();
  });

  it("one socket carries many channels, each getting only its own events", async () => {
    const socket = await PusherTestSocket.open();
    const rooms = Array.from({ length: 20 }, (_, i) => uniqueRoom(`ps-many${i}`));
    for (const room of rooms) expect((await socket.subscribe(room)).event).toBe("pusher_internal:subscription_succeeded");
    await Promise.all(rooms.map((room, i) => notify(room, { event: "hello", data: { i } })));
    for (const [i, room] of rooms.entries()) expect((await socket.nextOn(room, "hello")).data).toEqual({ i });
    socket.close();
  });

  it("refuses more than 100 channels on one connection", async () => {
    const socket = await PusherTestSocket.open();
    const prefix = uniqueRoom("ps-cap");
    for (let i = 0; i < 100; i++) socket.send({ event: "pusher:subscribe", data: { channel: `${prefix}-${i}` } });
    for (let i = 0; i < 100; i++) await socket.nextOn(`${prefix}-${i}`, "pusher_internal:subscription_succeeded");
    const refused = await socket.subscribe(`${prefix}-100`);
    expect(refused).toMatchObject({ event: "pusher:subscription_error", data: { type: "LimitReached", status: 400 } });
    socket.close();
  }, 30_000); // 100 rooms come to life

  it("refuses channel names that are not Pusher's, which keeps inboxes and legacy sessions out of reach", async () => {
    const socket = await PusherTestSocket.open();
    const refused = await socket.subscribe("bad channel!");
    expect(refused).toMatchObject({ event: "pusher:subscription_error", data: { type: "InvalidChannel", status: 400 } });
    // Rooms with a colon are valid rooms but not channels: a public subscription needs no token, so they must stay native-only.
    for (const room of ["user:alice", "chat-session:45"]) {
      expect(await socket.subscribe(room)).toMatchObject({ event: "pusher:subscription_error", data: { type: "InvalidChannel", status: 400 } });
      await notify(room, { event: "private-stuff", data: {} });
    }
    const usable = uniqueRoom("still-usable");
    await socket.subscribe(usable);
    await notify(usable, { event: "marker", data: {} });
    await socket.nextOn(usable, "marker");
    expect(socket.frames.filter((f) => f.event === "private-stuff")).toEqual([]);
    socket.close();
  });
});
