/**
 * SPEC §7 Web Push against a real `wrangler dev`, delivering to a local push
 * service (./push-service.ts) that checks VAPID and decrypts like a browser
 * vendor's. The server has PUSH_ALLOW_HTTP_ENDPOINTS (the service is plain
 * http on 127.0.0.1) and a short retry base so backoff fits in a test.
 * push_logs is read from the server's D1 file.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postJson, tokenFor, WsClient } from "./clients";
import { d1Rows } from "./d1";
import { PushService, vapidKeyPair, type PushDevice } from "./push-service";
import { DEFAULT_SECRETS, DevServer, freePort } from "./server";

const RETRY_BASE_MS = 150;

let server: DevServer;
let service: PushService;
let vapid: { publicKey: string; privateKey: string };

beforeAll(async () => {
  vapid = await vapidKeyPair();
  [service, server] = await Promise.all([
    PushService.start(),
    DevServer.start({
      vars: {
        VAPID_PUBLIC_KEY: vapid.publicKey,
        VAPID_PRIVATE_KEY: vapid.privateKey,
        VAPID_SUBJECT: "mailto:ops@rooms.example",
        PUSH_ALLOW_HTTP_ENDPOINTS: "1",
        PUSH_RETRY_BASE_MS: String(RETRY_BASE_MS),
      },
    }),
  ]);
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await service?.close();
});

const unique = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function call(path: string, token: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${server.url}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...init.headers } });
}

/** A device of `user` (a fresh key pair at the local push service), registered with the server. */
async function device(user: string, deviceName = "test device"): Promise<PushDevice> {
  const pushDevice = await service.newDevice(vapid.publicKey);
  const response = await postJson(`${server.url}/push/subscriptions`, { subscription: pushDevice.subscription, deviceType: "browser", deviceName }, await tokenFor(user));
  expect(response.status).toBe(201);
  return pushDevice;
}

/** Makes `user` a member of `room` without an event: a read receipt for seq 0. */
async function join(room: string, user: string): Promise<void> {
  const response = await postJson(`${server.url}/rooms/${room}/read`, { seq: 0 }, await tokenFor(user));
  expect(response.status).toBe(204);
}

function notify(room: string, body: unknown): Promise<Response> {
  return postJson(`${server.url}/rooms/${encodeURIComponent(room)}/notify`, body, DEFAULT_SECRETS.NOTIFY_SECRET);
}

interface LogRow {
  user_id: string;
  room: string | null;
  seq: number | null;
  endpoint: string;
  status: string;
  http_status: number | null;
  error: string | null;
  attempt: number;
  created_at: number;
}

const logs = (where: string, ...params: (string | number)[]) =>
  d1Rows<LogRow>(server.persistDir, `SELECT * FROM push_logs WHERE ${where} ORDER BY created_at, attempt, user_id`, ...params);

/** Polls push_logs until `done(rows)` (the room writes them right after the attempts). */
async function logsUntil(where: string, params: (string | number)[], done: (rows: LogRow[]) => boolean, timeoutMs = 30_000): Promise<LogRow[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = logs(where, ...params);
    if (done(rows)) return rows;
    if (Date.now() > deadline) throw new Error(`push_logs where ${where} ${JSON.stringify(params)}: ${JSON.stringify(rows)}`);
    await sleep(50);
  }
}

/** The room's push queue is empty: every event expanded, every job settled, every attempt logged. */
async function pushQueueDrained(room: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const response = await fetch(`${server.url}/rooms/${encodeURIComponent(room)}/status`, { headers: { authorization: `Bearer ${DEFAULT_SECRETS.NOTIFY_SECRET}` } });
    const { push } = (await response.json()) as { push: { events: number; jobs: number; logs: number } };
    if (push.events + push.jobs + push.logs === 0) return;
    if (Date.now() > deadline) throw new Error(`room ${room}: push queue not drained: ${JSON.stringify(push)}`);
    await sleep(50);
  }
}

describe("Web Push: keys and the test push", () => {
  it("serves the VAPID public key without auth", async () => {
    const response = await fetch(`${server.url}/push/vapid-public-key`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ publicKey: vapid.publicKey });
  });

  it("POST /push/test pushes to every device: a VAPID-signed, decryptable payload; a 410 device is deleted", async () => {
    const user = unique("tess");
    const token = await tokenFor(user);
    const phone = await device(user, "phone");
    const laptop = (await device(user, "laptop")).answer(410);
    const response = await postJson(`${server.url}/push/test`, {}, token);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ sent: 1, failed: 1 });

    const [push] = await phone.waitForRequests(1);
    expect(push!.payload).toEqual({ title: "Test notification", body: `Push notifications reach this device, ${user}.`, url: "/", room: `user:${user}`, seq: 0, event: "push_test" });
    expect(push!.claims).toMatchObject({ aud: service.origin, sub: "mailto:ops@rooms.example" });
    expect(push!.ttl).toBe("86400");
    expect(push!.bodyBytes).toBeLessThanOrEqual(4096);
    expect(laptop.received.map((r) => r.status)).toEqual([410]);

    const list = (await (await call("/push/subscriptions", token)).json()) as any;
    expect(list.subscriptions.map((s: any) => [s.endpoint, s.deviceName])).toEqual([[phone.endpoint, "phone"]]);
    expect(list.subscriptions[0].lastUsedAt).not.toBeNull();
    const rows = logs("user_id = ?", user);
    expect(rows.map((r) => [r.endpoint, r.status, r.http_status, r.attempt, r.room, r.seq]).sort()).toEqual(
      [[phone.endpoint, "sent", 201, 1, null, null], [laptop.endpoint, "gone", 410, 1, null, null]].sort(),
    );
  });
});

describe("Web Push: who gets a push for a room event", () => {
  it("an offline member gets it; members on WebSocket, SSE or a recent long-poll do not, nor does the sender", async () => {
    const room = unique("push-team");
    const [sender, offline, onWs, onSse, onPoll] = ["sam", "olive", "wanda", "sean", "lola"].map((name) => unique(name)) as [string, string, string, string, string];
    const devices = new Map<string, PushDevice>();
    for (const user of [sender, offline, onWs, onSse, onPoll]) {
      devices.set(user, await device(user));
      await join(room, user);
    }

    const ws = await WsClient.open(`${server.wsUrl}/rooms/${room}/ws?token=${await tokenFor(onWs)}`);
    await ws.until((frames) => frames.find((f) => f.type === "welcome"), "welcome");
    const sse = new AbortController();
    const stream = await fetch(`${server.url}/rooms/${room}/events?token=${await tokenFor(onSse)}`, { signal: sse.signal });
    const reader = stream.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toContain("retry:");
    expect((await call(`/rooms/${room}/messages?after=0`, await tokenFor(onPoll))).status).toBe(200);

    // That the send does not wait for the push is "a slow push service does not slow sends".
    const sent = await postJson(`${server.url}/rooms/${room}/messages`, { data: { text: "stand-up in 5 minutes" } }, await tokenFor(sender));
    expect(sent.status).toBe(201);

    const [push] = await devices.get(offline)!.waitForRequests(1);
    expect(push!.payload).toEqual({ title: `${sender} in ${room}`, body: "stand-up in 5 minutes", url: `/?room=${room}`, room, seq: 1, event: "message" });
    expect(push!.ttl).toBe("86400");
    expect(push!.urgency).toBe("normal");
    await pushQueueDrained(room);
    const rows = logs("room = ?", room);
    expect(rows.map((r) => [r.user_id, r.seq, r.status, r.http_status, r.attempt])).toEqual([[offline, 1, "sent", 201, 1]]);
    for (const user of [sender, onWs, onSse, onPoll]) expect(devices.get(user)!.received, user).toEqual([]);

    ws.close();
    sse.abort();
  });

  it("push:false sends nothing; push {title, body, url, urgency} words it; long text is cut with an ellipsis", async () => {
    const user = unique("nora");
    const inbox = `user:${user}`;
    const phone = await device(user);
    expect((await notify(inbox, { event: "ticket_assigned", data: { ticket: 1, text: "quiet" }, push: false })).status).toBe(202);
    expect(
      (await notify(inbox, {
        event: "ticket_assigned",
        data: { ticket: 2 },
        push: { title: "T".repeat(300), body: "B".repeat(1000), url: "https://app.example/tickets/2", urgency: "high" },
      })).status,
    ).toBe(202);

    const [push] = await phone.waitForRequests(1);
    const { title, body, ...rest } = push!.payload;
    expect(rest).toEqual({ url: "https://app.example/tickets/2", room: inbox, seq: 2, event: "ticket_assigned" });
    expect(title).toBe(`${"T".repeat(99)}…`);
    expect(body).toBe(`${"B".repeat(199)}…`);
    expect(push!.urgency).toBe("high");
    await pushQueueDrained(inbox);
    expect(logs("room = ?", inbox).map((r) => [r.seq, r.status])).toEqual([[2, "sent"]]);

    // Three-byte characters: title and body fit their character limits, but not the 1000-byte budget together.
    expect((await notify(inbox, { event: "invoice", data: {}, push: { title: "€".repeat(100), body: "€".repeat(200) } })).status).toBe(202);
    const [, second] = await phone.waitForRequests(2);
    const json = JSON.stringify(second!.payload);
    expect(Buffer.byteLength(json)).toBeLessThanOrEqual(1000);
    expect(second!.payload.title).toBe("€".repeat(100));
    expect(second!.payload.body).toMatch(/^€+…$/);
    expect(second!.payload.body.length).toBeLessThan(200);

    // No wording given: the event's data.title and data.text, and the room's page.
    expect((await notify(inbox, { event: "ticket_assigned", data: { title: "Ticket 9", text: "Printer on fire" } })).status).toBe(202);
    const [, , third] = await phone.waitForRequests(3);
    expect(third!.payload).toEqual({ title: "Ticket 9", body: "Printer on fire", url: `/?room=${encodeURIComponent(inbox)}`, room: inbox, seq: 4, event: "ticket_assigned" });
    expect(phone.received).toHaveLength(3);
  });
});

describe("Web Push: retries, expiry, failures", () => {
  it("retries 500 and 429 with exponential backoff, then succeeds; every attempt is logged", async () => {
    const user = unique("rita");
    const inbox = `user:${user}`;
    const phone = (await device(user)).answer(500, 429);
    expect((await notify(inbox, { event: "alert", data: { text: "disk full" } })).status).toBe(202);
    const pushes = await phone.waitForRequests(3);
    expect(pushes.map((p) => p.status)).toEqual([500, 429, 201]);
    for (const push of pushes) expect(push.payload).toMatchObject({ body: "disk full", seq: 1 });
    expect(pushes[1]!.at - pushes[0]!.at).toBeGreaterThanOrEqual(RETRY_BASE_MS - 20);
    expect(pushes[2]!.at - pushes[1]!.at).toBeGreaterThanOrEqual(2 * RETRY_BASE_MS - 20);
    const rows = await logsUntil("room = ?", [inbox], (r) => r.length === 3);
    expect(rows.map((r) => [r.attempt, r.status, r.http_status])).toEqual([[1, "retry", 500], [2, "retry", 429], [3, "sent", 201]]);
    expect(rows[0]!.error).toContain("500");
  });

  it("gives up after 3 attempts (5xx or network errors), logging each", async () => {
    const user = unique("gus");
    const inbox = `user:${user}`;
    const phone = (await device(user)).answer(503, 503, 503, 503);
    // A second device whose push service is not listening at all: network errors.
    const deadPort = await freePort();
    const dead = await service.newDevice(vapid.publicKey);
    const deadSubscription = { ...dead.subscription, endpoint: `http://127.0.0.1:${deadPort}/push/gone` };
    expect((await postJson(`${server.url}/push/subscriptions`, { subscription: deadSubscription }, await tokenFor(user))).status).toBe(201);

    expect((await notify(inbox, { event: "alert", data: { text: "again" } })).status).toBe(202);
    await phone.waitForRequests(3);
    await pushQueueDrained(inbox);
    expect(phone.received).toHaveLength(3);
    const rows = logs("room = ?", inbox);
    const byDevice = (endpoint: string) => rows.filter((r) => r.endpoint === endpoint).map((r) => [r.attempt, r.status, r.http_status]);
    expect(byDevice(phone.endpoint)).toEqual([[1, "retry", 503], [2, "retry", 503], [3, "failed", 503]]);
    expect(byDevice(deadSubscription.endpoint)).toEqual([[1, "retry", null], [2, "retry", null], [3, "failed", null]]);
    expect(rows.find((r) => r.endpoint === deadSubscription.endpoint)!.error).toMatch(/network error/);
  });

  it("does not follow a push service's redirect (it could point inward): the attempt fails and is logged", async () => {
    const user = unique("redir");
    const inbox = `user:${user}`;
    // Stands for an internal address the redirect would lead the service to.
    const inward: string[] = [];
    const trap = createServer((req, res) => {
      inward.push(`${req.method} ${req.url}`);
      res.writeHead(201).end();
    });
    await new Promise<void>((resolve) => trap.listen(0, "127.0.0.1", resolve));
    try {
      const phone = (await device(user)).answer(307);
      phone.redirectTo = `http://127.0.0.1:${(trap.address() as AddressInfo).port}/internal/admin`;
      expect((await notify(inbox, { event: "alert", data: { text: "hi" } })).status).toBe(202);
      await phone.waitForRequests(1);
      await pushQueueDrained(inbox);
      const rows = logs("room = ?", inbox);
      expect(rows.map((r) => [r.attempt, r.status, r.http_status])).toEqual([[1, "failed", 307]]);
      expect(rows[0]!.error).toContain("redirects are not followed");
      expect(phone.received).toHaveLength(1);
      expect(inward).toEqual([]);
    } finally {
      trap.close();
    }
  });

  it("a 410 deletes the subscription: no more pushes to it", async () => {
    const user = unique("gone");
    const inbox = `user:${user}`;
    const token = await tokenFor(user);
    const phone = (await device(user)).answer(410);
    expect((await notify(inbox, { event: "alert", data: { text: "one" } })).status).toBe(202);
    await phone.waitForRequests(1);
    await pushQueueDrained(inbox);
    expect(((await (await call("/push/subscriptions", token)).json()) as any).subscriptions).toEqual([]);
    expect(logs("room = ?", inbox).map((r) => [r.status, r.http_status, r.attempt])).toEqual([["gone", 410, 1]]);

    expect((await notify(inbox, { event: "alert", data: { text: "two" } })).status).toBe(202);
    await pushQueueDrained(inbox); // the event was queued when accepted; drained means it found no device
    expect(phone.received).toHaveLength(1);
  });

  it("a slow push service does not slow sends", async () => {
    const room = unique("push-slow");
    const [sender, away] = [unique("sid"), unique("amy")];
    const phone = await device(away);
    phone.hold(); // the push service takes each request and answers none until released
    await join(room, away);
    const token = await tokenFor(sender);
    const send = async (i: number) => expect((await postJson(`${server.url}/rooms/${room}/messages`, { data: { text: `m${i}` } }, token)).status).toBe(201);
    await send(1);
    await phone.untilHeld(1); // the room is now waiting on the push service for m1's push…
    for (let i = 2; i <= 5; i++) await send(i); // …and still accepts every send
    expect(phone.received).toEqual([]); // no push was answered meanwhile: the sends did not wait for one
    phone.release();
    const pushes = await phone.waitForRequests(5);
    expect(pushes.map((p) => p.payload.seq).sort()).toEqual([1, 2, 3, 4, 5]);
  });
});
