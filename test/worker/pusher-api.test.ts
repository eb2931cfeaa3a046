/**
 * The Pusher HTTP API (SPEC §8) inside workerd: Pusher's request signature,
 * the trigger limits, delivery to the native transports with seqs, and the
 * channel routes' validation. Requests are signed by ./pusher-api-signer,
 * which follows Pusher's published algorithm apart from the service's code.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { RAW_PUSHER_DATA_KEY } from "../../protocol/pusher";
import { hmacSha256Hex } from "../../server/auth/hmac-hex";
import { stringToSign, verifyPusherRequest } from "../../worker/pusher/request-signature";
import { BASE, call, tokenFor, TestSocket } from "./helpers";
import { hmacHex, md5Hex, pusherApi, signedPathAndQuery, toSign, trigger } from "./pusher-api-signer";
import { d1Messages, expectError, flushRoom, get, roomStatus, uniqueRoom, untilSubscribers } from "./support";

/** Pusher's worked example (HTTP API reference, "Worked authentication example"). */
const EXAMPLE = {
  secret: "7ad3773142a6692b25b8",
  body: '{"name":"foo","channels":["project-3"],"data":"{\\"some\\":\\"data\\"}"}',
  bodyMd5: "ec365a775a4cd0599faeb73354201b6f",
  params: { auth_key: "278d425bdf160c739803", auth_timestamp: "1353088179", auth_version: "1.0", body_md5: "ec365a775a4cd0599faeb73354201b6f" },
  signature: "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c",
};

const now = () => Math.floor(Date.now() / 1000);

/** Every event in a room, read over HTTP with a JWT (what a native client sees). */
async function roomEvents(room: string): Promise<any[]> {
  const response = await get(`/rooms/${encodeURIComponent(room)}/messages?after=0`, await tokenFor("reader"));
  expect(response.status).toBe(200);
  return ((await response.json()) as any).messages;
}


describe("Pusher request signatures", () => {
  it("reproduces Pusher's published worked example, in the service and in the test signer", async () => {
    expect(await md5Hex(EXAMPLE.body)).toBe(EXAMPLE.bodyMd5);
    expect(stringToSign("post", "/apps/3/events", EXAMPLE.params)).toBe(toSign("POST", "/apps/3/events", EXAMPLE.params));
    expect(await hmacSha256Hex(EXAMPLE.secret, stringToSign("POST", "/apps/3/events", EXAMPLE.params))).toBe(EXAMPLE.signature);
    expect(await hmacHex(EXAMPLE.secret, toSign("POST", "/apps/3/events", EXAMPLE.params))).toBe(EXAMPLE.signature);
  });

  it("accepts a request signed as the pusher SDK signs it, and stores the event", async () => {
    const channel = uniqueRoom("pusher-ok");
    const response = await trigger({ name: "order-shipped", channels: [channel], data: JSON.stringify({ order: 7 }) });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({});
    const [event] = await roomEvents(channel);
    expect(event).toMatchObject({ room: channel, seq: 1, event: "order-shipped", data: { order: 7 } });
    expect("from" in event).toBe(false);
  });

  it("accepts a timestamp 590 s old", async () => {
    const channel = uniqueRoom("pusher-ts");
    expect((await trigger({ name: "e", channel, data: "{}" }, { timestamp: now() - 590 })).status).toBe(200);
  });

  it("holds the 600 s window to the second, both ways", async () => {
    const stamp = 1_800_000_000;
    const { path, query } = await signedPathAndQuery("GET", "/channels", { timestamp: stamp });
    const request = new Request(`${BASE}${path}?${query}`);
    const at = (seconds: number) => verifyPusherRequest(request, new URL(request.url), new Uint8Array(0), env, seconds * 1000);
    await expect(at(stamp + 600.999)).resolves.toEqual({});
    await expect(at(stamp - 600)).resolves.toEqual({});
    await expect(at(stamp + 601)).rejects.toThrow(/auth_timestamp: 601 s away/);
    await expect(at(stamp - 601)).rejects.toThrow(/auth_timestamp: 601 s away/);
  });

  const rejections: [string, (channel: string) => Promise<Response>, string, RegExp][] = [
    ["a wrong secret", (c) => trigger({ name: "e", channel: c, data: "{}" }, { secret: "not-the-secret" }), "invalid_token", /auth_signature/],
    ["a wrong key", (c) => trigger({ name: "e", channel: c, data: "{}" }, { key: "someone-elses-key" }), "invalid_token", /auth_key/],
    ["a timestamp 610 s old", (c) => trigger({ name: "e", channel: c, data: "{}" }, { timestamp: now() - 610 }), "invalid_token", /auth_timestamp/],
    ["a timestamp 610 s ahead", (c) => trigger({ name: "e", channel: c, data: "{}" }, { timestamp: now() + 610 }), "invalid_token", /auth_timestamp/],
    ["a body altered after signing", (c) => trigger({ name: "e", channel: c, data: "{}" }, { sendBody: JSON.stringify({ name: "evil", channel: c, data: "{}" }) }), "invalid_token", /body_md5/],
    [
      "an altered body with its MD5 replaced",
      async (c) => {
        const evil = JSON.stringify({ name: "evil", channel: c, data: "{}" });
        return trigger({ name: "e", channel: c, data: "{}" }, { sendBody: evil, alterParams: { body_md5: await md5Hex(evil) } });
      },
      "invalid_token",
      /auth_signature/,
    ],
    ["auth_version 2.0", (c) => trigger({ name: "e", channel: c, data: "{}" }, { alterParams: { auth_version: "2.0" } }), "invalid_token", /auth_version/],
    ["no auth_signature", (c) => trigger({ name: "e", channel: c, data: "{}" }, { omit: ["auth_signature"] }), "missing_token", /auth_signature/],
    ["no auth_key", (c) => trigger({ name: "e", channel: c, data: "{}" }, { omit: ["auth_key"] }), "missing_token", /auth_key/],
    ["no auth_timestamp", (c) => trigger({ name: "e", channel: c, data: "{}" }, { omit: ["auth_timestamp"] }), "missing_token", /auth_timestamp/],
    ["no auth_version", (c) => trigger({ name: "e", channel: c, data: "{}" }, { omit: ["auth_version"] }), "missing_token", /auth_version/],
    ["no body_md5 with a body", (c) => trigger({ name: "e", channel: c, data: "{}" }, { omit: ["body_md5"] }), "missing_token", /body_md5/],
    ["no query at all", (c) => call(`/apps/${env.PUSHER_APP_ID}/events`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "e", channel: c, data: "{}" }) }), "missing_token", /auth_/],
  ];
  for (const [what, send, code, message] of rejections) {
    it(`refuses ${what} with 401 and stores nothing`, async () => {
      const channel = uniqueRoom("pusher-bad");
      expect(await expectError(await send(channel), 401, code)).toMatch(message);
      expect((await roomStatus(channel)).seq).toBe(0);
    });
  }

  it("refuses a GET whose query was changed after signing", async () => {
    const response = await pusherApi("GET", "/channels", { params: { filter_by_prefix: "presence-" }, alterParams: { filter_by_prefix: "private-" } });
    expect(await expectError(response, 401, "invalid_token")).toMatch(/auth_signature/);
  });

  it("answers 404 for another app id once the signature holds, 401 before", async () => {
    const channel = uniqueRoom("pusher-app");
    expect(await expectError(await trigger({ name: "e", channel, data: "{}" }, { appId: "999" }), 404, "not_found")).toMatch(/PUSHER_APP_ID/);
    await expectError(await trigger({ name: "e", channel, data: "{}" }, { appId: "999", secret: "wrong" }), 401, "invalid_token");
    expect((await roomStatus(channel)).seq).toBe(0);
  });
});

describe("POST /apps/:id/events", () => {
  it("triggers on 100 channels at once, one event in each", async () => {
    const channels = Array.from({ length: 100 }, (_, i) => uniqueRoom(`pusher-many-${i}`));
    const response = await trigger({ name: "fan", channels, data: JSON.stringify({ n: 1 }) });
    expect(response.status).toBe(200);
    const statuses = await Promise.all(channels.map((channel) => roomStatus(channel)));
    expect(statuses.map((s) => s.seq)).toEqual(channels.map(() => 1));
  });

  it("refuses 101 channels and stores nothing", async () => {
    const channels = Array.from({ length: 101 }, (_, i) => uniqueRoom(`pusher-over-${i}`));
    expect(await expectError(await trigger({ name: "fan", channels, data: "{}" }), 400, "invalid_body")).toMatch(/^channels: at most 100/);
    expect((await roomStatus(channels[0]!)).seq).toBe(0);
  });

  it("refuses a channel that is not a room id, naming it, and stores nothing", async () => {
    const good = uniqueRoom("pusher-good");
    expect(await expectError(await trigger({ name: "e", channels: [good, "no spaces"], data: "{}" }), 400, "invalid_room")).toMatch(/^channels\.1/);
    expect((await roomStatus(good)).seq).toBe(0);
  });

  it("sends one event per channel when a channel is repeated", async () => {
    const channel = uniqueRoom("pusher-dup");
    expect((await trigger({ name: "e", channels: [channel, channel], data: "{}" })).status).toBe(200);
    expect((await roomStatus(channel)).seq).toBe(1);
  });

  it("takes data up to 10,240 bytes and refuses 10,241 with 413", async () => {
    const channel = uniqueRoom("pusher-size");
    expect((await trigger({ name: "e", channel, data: "x".repeat(10_240) })).status).toBe(200);
    expect(await expectError(await trigger({ name: "e", channel, data: "x".repeat(10_241) }), 413, "payload_too_large")).toMatch(/^data: 10241 bytes/);
    // Counted in UTF-8 bytes: 5,121 × "é" is 10,242 bytes.
    await expectError(await trigger({ name: "e", channel, data: "é".repeat(5_121) }), 413, "payload_too_large");
    expect((await roomStatus(channel)).seq).toBe(1);
  });

  const badBodies: [string, Record<string, unknown>, RegExp][] = [
    ["a name over 200 characters", { name: "n".repeat(201), channel: "c", data: "{}" }, /^name: must be at most 200/],
    ["a pusher: name", { name: "pusher:subscribe", channel: "c", data: "{}" }, /^name: pusher: and pusher_internal: names are reserved/],
    ["a socket_id that is not one", { name: "e", channel: "c", data: "{}", socket_id: "abc" }, /^socket_id:/],
    ["data that is not a string", { name: "e", channel: "c", data: { a: 1 } }, /^data: must be a string/],
    ["both channel and channels", { name: "e", channel: "c", channels: ["c"], data: "{}" }, /^channels: give either/],
    ["neither channel nor channels", { name: "e", data: "{}" }, /^channels: give either/],
    ["no name", { channel: "c", data: "{}" }, /^name:/],
    ["an unknown info attribute", { name: "e", channel: "c", data: "{}", info: "colour" }, /^info: attributes are user_count, subscription_count/],
    ["a chat-named event without text", { name: "message", channel: "c", data: JSON.stringify({ body: "hi" }) }, /^data: events named "message"/],
  ];
  for (const [what, body, message] of badBodies) {
    it(`refuses ${what} with 400 naming the field`, async () => {
      const channel = uniqueRoom("pusher-body");
      const response = await trigger({ ...body, ...("channel" in body ? { channel } : {}), ...("channels" in body ? { channels: [channel] } : {}) });
      expect(await expectError(response, 400, "invalid_body")).toMatch(message);
      expect((await roomStatus(channel)).seq).toBe(0);
    });
  }

  it("refuses a signed body sent without Content-Type: application/json with 415", async () => {
    const { path, query, body } = await signedPathAndQuery("POST", "/events", { body: { name: "e", channel: "c", data: "{}" } });
    await expectError(await call(`${path}?${query}`, { method: "POST", body: body!, headers: { "content-type": "text/plain" } }), 415, "unsupported_media_type");
  });

  it("keeps a JSON object's data as the event's data and any other string under pusherData", async () => {
    const channel = uniqueRoom("pusher-data");
    const payloads = ['{"a":1,"b":[2]}', "hello", "[1,2]", "42", "null", '"quoted"', "{not json"];
    for (const data of payloads) expect((await trigger({ name: "e", channel, data })).status).toBe(200);
    const events = await roomEvents(channel);
    expect(events.map((e) => e.data)).toEqual([
      { a: 1, b: [2] },
      ...payloads.slice(1).map((raw) => ({ [RAW_PUSHER_DATA_KEY]: raw })),
    ]);
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it("keeps Laravel's event class names as the event name", async () => {
    const channel = uniqueRoom("private-orders");
    expect((await trigger({ name: "App\\Events\\OrderShipped", channel, data: '{"id":1}' })).status).toBe(200);
    expect((await roomEvents(channel))[0]).toMatchObject({ event: "App\\Events\\OrderShipped", data: { id: 1 } });
  });

  it("accepts a chat-named event that carries text", async () => {
    const channel = uniqueRoom("pusher-chat");
    expect((await trigger({ name: "message", channel, data: '{"text":"hi"}' })).status).toBe(200);
    expect((await roomEvents(channel))[0]).toMatchObject({ event: "message", data: { text: "hi" } });
  });

  it("answers info per channel: user_count for presence channels only, subscription_count for all", async () => {
    const presence = uniqueRoom("presence-info");
    const open = uniqueRoom("info");
    const response = await trigger({ name: "e", channels: [presence, open], data: "{}", info: "user_count,subscription_count" });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      channels: { [presence]: { user_count: 0, subscription_count: 0 }, [open]: { subscription_count: 0 } },
    });
  });
});

describe("POST /apps/:id/batch_events", () => {
  it("delivers 10 events, in order per channel", async () => {
    const a = uniqueRoom("batch-a");
    const b = uniqueRoom("batch-b");
    const batch = Array.from({ length: 10 }, (_, i) => ({ name: "step", channel: i % 2 ? b : a, data: JSON.stringify({ i }) }));
    const response = await pusherApi("POST", "/batch_events", { body: { batch } });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({});
    expect((await roomEvents(a)).map((e) => [e.seq, e.data.i])).toEqual([[1, 0], [2, 2], [3, 4], [4, 6], [5, 8]]);
    expect((await roomEvents(b)).map((e) => [e.seq, e.data.i])).toEqual([[1, 1], [2, 3], [3, 5], [4, 7], [5, 9]]);
  });

  it("refuses 11 events and stores nothing", async () => {
    const channel = uniqueRoom("batch-over");
    const batch = Array.from({ length: 11 }, () => ({ name: "e", channel, data: "{}" }));
    expect(await expectError(await pusherApi("POST", "/batch_events", { body: { batch } }), 400, "invalid_body")).toMatch(/^batch: at most 10/);
    expect((await roomStatus(channel)).seq).toBe(0);
  });

  it("refuses the whole batch when one event is over 10 KB, or has a bad channel", async () => {
    const channel = uniqueRoom("batch-size");
    const big = [{ name: "e", channel, data: "{}" }, { name: "e", channel, data: "x".repeat(10_241) }];
    expect(await expectError(await pusherApi("POST", "/batch_events", { body: { batch: big } }), 413, "payload_too_large")).toMatch(/^batch\.1\.data/);
    const badChannel = [{ name: "e", channel, data: "{}" }, { name: "e", channel: "bad channel", data: "{}" }];
    expect(await expectError(await pusherApi("POST", "/batch_events", { body: { batch: badChannel } }), 400, "invalid_room")).toMatch(/^batch\.1\.channel/);
    expect((await roomStatus(channel)).seq).toBe(0);
  });

  it("answers {batch:[…]} with each event's info when any event asks", async () => {
    const channel = uniqueRoom("batch-info");
    const batch = [{ name: "e", channel, data: "{}", info: "subscription_count" }, { name: "e", channel, data: "{}" }];
    const response = await pusherApi("POST", "/batch_events", { body: { batch } });
    expect(await response.json()).toEqual({ batch: [{ subscription_count: 0 }, {}] });
  });
});

describe("Pusher-triggered events on the native transports", () => {
  it("reach a native WebSocket and a held long-poll with the same seq, and D1", async () => {
    const channel = uniqueRoom("pusher-live");
    const token = await tokenFor("alice");
    const socket = await TestSocket.open(channel, token);
    await socket.next((f) => f.type === "welcome");
    const poll = call(`/rooms/${channel}/messages?after=0&wait=20`, { headers: { authorization: `Bearer ${token}` } });
    await untilSubscribers(channel, 2);
    // socket_id only concerns Pusher connections: native clients still get the event.
    const response = await trigger({ name: "shipped", channel, data: '{"order":9}', socket_id: "123.456" });
    expect(response.status).toBe(200);
    const [live] = await socket.untilMessages(1);
    expect(live).toMatchObject({ room: channel, seq: 1, event: "shipped", data: { order: 9 } });
    const polled = (await (await poll).json()) as any;
    expect(polled).toEqual({ messages: [live], seq: 1 });
    await flushRoom(channel);
    expect((await d1Messages(channel)).map((row) => [row.seq, row.event, JSON.parse(row.envelope)])).toEqual([[1, "shipped", live]]);
    socket.close();
  });
});

describe("channel routes", () => {
  it("lists occupied channels; user_count only with filter_by_prefix=presence-", async () => {
    const all = await pusherApi("GET", "/channels");
    expect(all.status).toBe(200);
    expect(await all.json()).toHaveProperty("channels");
    await expectError(await pusherApi("GET", "/channels", { params: { info: "user_count" } }), 400, "invalid_query");
    await expectError(await pusherApi("GET", "/channels", { params: { info: "user_count", filter_by_prefix: "private-" } }), 400, "invalid_query");
    const presence = await pusherApi("GET", "/channels", { params: { info: "user_count", filter_by_prefix: "presence-" } });
    expect(presence.status).toBe(200);
    const { channels } = (await presence.json()) as any;
    for (const [name, attributes] of Object.entries<any>(channels)) {
      expect(name.startsWith("presence-")).toBe(true);
      expect(attributes.user_count).toBeGreaterThan(0);
    }
  });

  it("describes one channel: occupied, and the counts asked for", async () => {
    const open = uniqueRoom("orders.42");
    const presence = uniqueRoom("presence-chan.1");
    expect(await (await pusherApi("GET", `/channels/${open}`)).json()).toEqual({ occupied: false });
    expect(await (await pusherApi("GET", `/channels/${open}`, { params: { info: "subscription_count" } })).json()).toEqual({ occupied: false, subscription_count: 0 });
    await expectError(await pusherApi("GET", `/channels/${open}`, { params: { info: "user_count" } }), 400, "invalid_query");
    expect(await (await pusherApi("GET", `/channels/${presence}`, { params: { info: "user_count,subscription_count" } })).json()).toEqual({
      occupied: false,
      user_count: 0,
      subscription_count: 0,
    });
    // Signed unescaped, sent percent-encoded, as the SDKs do.
    await expectError(await pusherApi("GET", "/channels/not a room"), 400, "invalid_room");
  });

  it("lists users of presence channels only", async () => {
    const presence = uniqueRoom("presence-room.7"); // Laravel's dotted names
    expect(await (await pusherApi("GET", `/channels/${presence}/users`)).json()).toEqual({ users: [] });
    expect(await expectError(await pusherApi("GET", `/channels/${uniqueRoom("private-users")}/users`), 400, "invalid_room")).toMatch(/presence-/);
  });

  it("answers other methods with 405", async () => {
    const response = await call(`/apps/${env.PUSHER_APP_ID}/events`, { method: "GET" });
    await expectError(response, 405, "method_not_allowed");
    expect(response.headers.get("allow")).toBe("POST");
  });
});
