/**
 * SPEC §11 end to end: a dedicated `wrangler dev` with WEBHOOK_URLS pointing
 * at a local receiver that verifies EVERY call with the official `pusher`
 * SDK's `webhook()` (`isValid()`, `getEvents()`; a call that fails it is
 * answered 401 and fails the test), and real clients: a native WebSocket,
 * pusher-js on public and presence channels, HTTP sends. Every wait is on
 * an event reaching the receiver (or the room's status), never a sleep.
 */
import Pusher, { type Channel } from "pusher-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { tokenFor, WsClient } from "./clients";
import { pusherJsOptions } from "./pusher-server-sdk-clients";
import { DEFAULT_SECRETS, DevServer } from "./server";
import { Api, uniqueRoom, within } from "./transports";
import { WebhookReceiver, type ReceivedEvent } from "./webhook-receiver";

let receiver: WebhookReceiver;
let server: DevServer;
let api: Api;
const pushers: Pusher[] = [];

beforeAll(async () => {
  receiver = await WebhookReceiver.start({ appId: DEFAULT_SECRETS.PUSHER_APP_ID, key: DEFAULT_SECRETS.PUSHER_KEY, secret: DEFAULT_SECRETS.PUSHER_SECRET });
  server = await DevServer.start({
    vars: {
      WEBHOOK_URLS: receiver.url,
      PUSH_ALLOW_HTTP_ENDPOINTS: "1",
      WEBHOOK_EVENTS: "channel_occupied,channel_vacated,member_added,member_removed,client_event,message",
      WEBHOOK_BATCH_MS: "100",
      WEBHOOK_RETRY_BASE_MS: "200",
      WEBHOOK_MAX_PENDING: "30",
      PRESENCE_GRACE_MS: "300",
    },
  });
  api = new Api(server.url);
});

afterAll(async () => {
  await server?.stop();
  await receiver?.stop();
});

afterEach(() => {
  for (const pusher of pushers.splice(0)) pusher.disconnect();
  // Every call the service made verified with the SDK.
  expect(receiver.invalid).toBe(0);
});

async function connectPusher(jwt?: string): Promise<Pusher> {
  const pusher = new Pusher(DEFAULT_SECRETS.PUSHER_KEY, pusherJsOptions(server.url, jwt));
  pushers.push(pusher);
  await within(new Promise<void>((resolve) => pusher.connection.bind("connected", () => resolve())), 10_000, "pusher-js to connect");
  return pusher;
}

function subscribed(pusher: Pusher, name: string): Promise<Channel> {
  const channel = pusher.subscribe(name);
  return within(new Promise<Channel>((resolve) => channel.bind("pusher:subscription_succeeded", () => resolve(channel))), 10_000, `subscription to ${name}`);
}

const names = (events: ReceivedEvent[]) => events.map((e) => e.name);
const hasAll = (wanted: string[]) => (events: ReceivedEvent[]) => wanted.every((name) => names(events).includes(name));

describe("webhooks (Pusher's format, verified by the pusher SDK)", () => {
  it("a native WebSocket room: occupied, member_added, then member_removed and vacated", async () => {
    const room = uniqueRoom("wh-native");
    const socket = await WsClient.open(`${api.wsBase}/rooms/${room}/ws?token=${await tokenFor("nina")}`);
    await socket.until((frames) => frames.find((f) => f.type === "welcome"), "welcome");
    await receiver.untilEvents(room, hasAll(["channel_occupied", "member_added"]), "occupied and member_added");
    socket.close();
    const events = await receiver.untilEvents(room, hasAll(["channel_vacated", "member_removed"]), "vacated and member_removed");
    expect(names(events)).toEqual(["channel_occupied", "member_added", "channel_vacated", "member_removed"]);
    expect(events.filter((e) => e.name.startsWith("member_")).map((e) => e.user_id)).toEqual(["nina", "nina"]);
  });

  it("a pusher-js public channel: occupied when it subscribes, vacated when it leaves", async () => {
    const room = uniqueRoom("wh-public");
    const pusher = await connectPusher();
    await subscribed(pusher, room);
    await receiver.untilEvents(room, hasAll(["channel_occupied"]), "occupied");
    pusher.unsubscribe(room);
    const events = await receiver.untilEvents(room, hasAll(["channel_vacated"]), "vacated");
    expect(names(events)).toEqual(["channel_occupied", "channel_vacated"]);
  });

  it("a pusher-js presence member: member_added, client_event with socket_id and user_id, member_removed", async () => {
    const room = `presence-${uniqueRoom("wh")}`;
    const pat = await connectPusher(await tokenFor("pat"));
    const channel = await subscribed(pat, room);
    await receiver.untilEvents(room, hasAll(["channel_occupied", "member_added"]), "occupied and member_added");
    channel.trigger("client-wave", { hello: "there" });
    const [clientEvent] = (await receiver.untilEvents(room, hasAll(["client_event"]), "client_event")).filter((e) => e.name === "client_event");
    expect(clientEvent).toMatchObject({ channel: room, event: "client-wave", data: '{"hello":"there"}', socket_id: pat.connection.socket_id, user_id: "pat" });
    pat.disconnect();
    const events = await receiver.untilEvents(room, hasAll(["channel_vacated", "member_removed"]), "vacated and member_removed");
    expect(events.filter((e) => e.name.startsWith("member_")).map((e) => [e.name, e.user_id])).toEqual([["member_added", "pat"], ["member_removed", "pat"]]);
  });

  it("message events when WEBHOOK_EVENTS asks for them, in order, each with its seq", async () => {
    const room = uniqueRoom("wh-message");
    const token = await tokenFor("max");
    for (const text of ["one", "two", "three"]) expect((await api.send(room, token, text)).status).toBe(201);
    const events = await receiver.untilEvents(room, (events) => events.length === 3, "three messages");
    expect(events.map((e) => [e.name, e.seq, (e.data as { text: string }).text, e.user_id])).toEqual([
      ["message", 1, "one", "max"],
      ["message", 2, "two", "max"],
      ["message", 3, "three", "max"],
    ]);
  });

  it("a receiver that answers 500 twice gets the same event ids again, then the rest in order", async () => {
    const room = uniqueRoom("wh-retry");
    receiver.script(room, { statuses: [500, 500] });
    await api.notify(room, "first", { n: 1 });
    await receiver.until(() => receiver.callsFor(room).length >= 3, "three calls");
    const [a, b, c] = receiver.callsFor(room);
    expect([a!.status, b!.status, c!.status]).toEqual([500, 500, 200]);
    expect(b!.events[0]!.id).toBe(a!.events[0]!.id);
    expect(c!.events[0]!.id).toBe(a!.events[0]!.id);
    await api.notify(room, "second", { n: 2 });
    const events = await receiver.untilEvents(room, (events) => events.length >= 2, "the second event");
    expect(events.map((e) => e.event)).toEqual(["first", "second"]);
  });

  it("a receiver that takes 3 s per call, or does not answer at all, does not slow sends", async () => {
    const room = uniqueRoom("wh-slow");
    // Held until released, then 3 s per call: slower than anything the sends below could wait for.
    receiver.script(room, { hold: true, delayMs: 3000 });
    const token = await tokenFor("sam");
    expect((await api.send(room, token, "m1")).status).toBe(201);
    await receiver.until(() => receiver.heldFor(room) === 1, "the first call to be in flight, unanswered");
    for (let n = 2; n <= 10; n++) expect((await api.send(room, token, `m${n}`)).status).toBe(201);
    // Every send was answered while the room's call was still unanswered.
    expect(receiver.heldFor(room)).toBe(1);
    expect(receiver.callsFor(room)).toEqual([]);
    receiver.release(room);
    const events = await receiver.untilEvents(room, (events) => events.length === 10, "all ten messages");
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it("a dead receiver does not grow the room without bound: the oldest are dropped and counted", async () => {
    const room = uniqueRoom("wh-dead");
    receiver.script(room, { status: 503 });
    for (let n = 1; n <= 40; n++) await api.notify(room, "tick", { n });
    const status = (await api.status(room)) as unknown as { webhooks: { pending: number; dropped: number; maxPending: number; targets: { lastError?: string }[] } };
    expect(status.webhooks).toMatchObject({ pending: 30, maxPending: 30, dropped: 10 });
    await receiver.until(() => receiver.callsFor(room).length > 0, "an attempt");
    const failing = await api.untilStatus(room, (s: any) => /503/.test(s.webhooks.targets[0]?.lastError ?? ""), "the 503 in the status");
    expect((failing as any).webhooks.pending).toBe(30);
  });
});
