/**
 * SPEC §7 subscriptions, inside workerd with production's endpoint policy
 * (no PUSH_ALLOW_HTTP_ENDPOINTS): what a valid subscription is, which
 * endpoints are refused, upsert by endpoint, and that a user only removes
 * their own. Delivery is tested end to end (test/e2e/push.test.ts).
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, postJson, tokenFor } from "./helpers";
import { expectError, get } from "./support";

const b64url = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

/** A real P-256 public point and auth secret, as a browser's PushSubscription.toJSON() has them. */
async function browserKeys(): Promise<{ p256dh: string; auth: string }> {
  const pair = (await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"])) as CryptoKeyPair;
  const raw = new Uint8Array((await crypto.subtle.exportKey("raw", pair.publicKey)) as ArrayBuffer);
  return { p256dh: b64url(raw), auth: b64url(crypto.getRandomValues(new Uint8Array(16))) };
}

const endpointFor = () => `https://fcm.googleapis.com/fcm/send/${crypto.randomUUID()}`;

async function subscription(endpoint = endpointFor()) {
  return { endpoint, expirationTime: null, keys: await browserKeys() };
}

function del(path: string, body: unknown, token: string): Promise<Response> {
  return call(path, { method: "DELETE", headers: { "content-type": "application/json", authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
}

async function devices(token: string): Promise<any[]> {
  const response = await get("/push/subscriptions", token);
  expect(response.status).toBe(200);
  return ((await response.json()) as any).subscriptions;
}

describe("POST /push/subscriptions: validation", () => {
  it("accepts a browser's subscription: 201 with the device, keys not echoed", async () => {
    const token = await tokenFor(`val-${crypto.randomUUID()}`);
    const sub = await subscription();
    const response = await postJson("/push/subscriptions", { subscription: sub, deviceType: "desktop", deviceName: "Firefox on Linux" }, token);
    expect(response.status).toBe(201);
    const { subscription: device } = (await response.json()) as any;
    expect(device).toMatchObject({ endpoint: sub.endpoint, deviceType: "desktop", deviceName: "Firefox on Linux", lastUsedAt: null });
    expect(device.createdAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(JSON.stringify(device)).not.toContain(sub.keys.auth);
  });

  it("answers 400 invalid_body for malformed subscriptions, naming the field", async () => {
    const token = await tokenFor("val-bad");
    const good = await subscription();
    const bytes = (n: number, first = 4) => b64url(Uint8Array.from({ length: n }, (_, i) => (i === 0 ? first : i)));
    const cases: [string, unknown, string][] = [
      ["no subscription", { deviceName: "x" }, "subscription"],
      ["subscription not an object", { subscription: "https://push.example.com/x" }, "subscription"],
      ["no endpoint", { subscription: { keys: good.keys } }, "subscription.endpoint"],
      ["endpoint not a URL", { subscription: { ...good, endpoint: "not a url" } }, "subscription.endpoint"],
      ["endpoint too long", { subscription: { ...good, endpoint: `https://push.example.com/${"a".repeat(2100)}` } }, "subscription.endpoint"],
      ["no keys", { subscription: { endpoint: good.endpoint } }, "subscription.keys"],
      ["p256dh of 64 bytes", { subscription: { ...good, keys: { ...good.keys, p256dh: bytes(64) } } }, "subscription.keys.p256dh"],
      ["p256dh of 66 bytes", { subscription: { ...good, keys: { ...good.keys, p256dh: bytes(66) } } }, "subscription.keys.p256dh"],
      ["p256dh compressed (0x02)", { subscription: { ...good, keys: { ...good.keys, p256dh: bytes(65, 2) } } }, "subscription.keys.p256dh"],
      ["p256dh not on the curve", { subscription: { ...good, keys: { ...good.keys, p256dh: bytes(65) } } }, "subscription.keys.p256dh"],
      ["p256dh in standard base64", { subscription: { ...good, keys: { ...good.keys, p256dh: good.keys.p256dh.replace(/^./, "+") } } }, "subscription.keys.p256dh"],
      ["auth of 15 bytes", { subscription: { ...good, keys: { ...good.keys, auth: bytes(15) } } }, "subscription.keys.auth"],
      ["auth of 32 bytes", { subscription: { ...good, keys: { ...good.keys, auth: bytes(32) } } }, "subscription.keys.auth"],
      ["auth not a string", { subscription: { ...good, keys: { ...good.keys, auth: 16 } } }, "subscription.keys.auth"],
      ["deviceName too long", { subscription: good, deviceName: "n".repeat(129) }, "deviceName"],
      ["deviceType not a string", { subscription: good, deviceType: 3 }, "deviceType"],
    ];
    for (const [what, body, field] of cases) {
      const message = await expectError(await postJson("/push/subscriptions", body, token), 400, "invalid_body");
      expect(message, what).toContain(field);
    }
    const notJson = await call("/push/subscriptions", { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: "{" });
    await expectError(notJson, 400, "invalid_body");
    const wrongType = await call("/push/subscriptions", { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "text/plain" }, body: "{}" });
    await expectError(wrongType, 415, "unsupported_media_type");
    await expectError(await postJson("/push/subscriptions", { subscription: good }), 401, "missing_token");
  });

  it("refuses endpoints that are not https on a public host", async () => {
    const token = await tokenFor("val-host");
    const refused = [
      "http://push.example.com/x", // http without PUSH_ALLOW_HTTP_ENDPOINTS
      "ftp://push.example.com/x",
      "https://localhost/x",
      "https://push.localhost/x",
      "https://127.0.0.1/x",
      "https://127.1/x", // the URL parser normalises these to 127.0.0.1
      "https://0x7f000001/x",
      "https://2130706433/x",
      "https://0.0.0.0/x",
      "https://10.1.2.3/x",
      "https://172.16.5.4/x",
      "https://192.168.1.10/x",
      "https://100.64.0.1/x",
      "https://169.254.169.254/latest/meta-data",
      "https://224.0.0.1/x",
      "https://[::1]/x",
      "https://[::]/x",
      "https://[::ffff:127.0.0.1]/x",
      "https://[fd00::1]/x",
      "https://[fe80::1]/x",
      "https://[2001:db8::1]/x",
      "https://intranet/x",
      "https://printer.local/x",
      "https://db.internal/x",
      "https://user:secret@push.example.com/x",
    ];
    for (const endpoint of refused) {
      const message = await expectError(await postJson("/push/subscriptions", { subscription: await subscription(endpoint) }, token), 400, "invalid_body");
      expect(message, endpoint).toMatch(/^subscription\.endpoint: /);
    }
    for (const endpoint of ["https://updates.push.services.mozilla.com/wpush/v2/abc", "https://web.push.apple.com/QGx", "https://8.8.8.8/x", "https://[2606:4700::1111]/x", "https://push.example.com:8443/x"]) {
      expect((await postJson("/push/subscriptions", { subscription: await subscription(endpoint) }, token)).status, endpoint).toBe(201);
    }
  });
});

describe("push subscriptions: upsert, list, delete", () => {
  it("the same endpoint again updates it: new keys and labels, created time kept, labels kept when omitted", async () => {
    const token = await tokenFor(`up-${crypto.randomUUID()}`);
    const endpoint = endpointFor();
    const first = (await (await postJson("/push/subscriptions", { subscription: await subscription(endpoint), deviceType: "mobile", deviceName: "Pixel" }, token)).json()) as any;
    await scheduler.wait(5);
    const second = await postJson("/push/subscriptions", { subscription: await subscription(endpoint), deviceName: "Pixel 9" }, token);
    expect(second.status).toBe(201);
    const updated = ((await second.json()) as any).subscription;
    expect(updated).toMatchObject({ endpoint, deviceType: "mobile", deviceName: "Pixel 9", createdAt: first.subscription.createdAt });
    expect(updated.updatedAt > first.subscription.updatedAt).toBe(true);
    expect((await devices(token)).map((d) => d.deviceName)).toEqual(["Pixel 9"]);
    const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM push_subscriptions WHERE endpoint = ?").bind(endpoint).first<{ n: number }>();
    expect(row!.n).toBe(1);
  });

  it("an endpoint posted by another user moves to them (the browser now belongs to whoever signed in)", async () => {
    const [alice, bob] = [await tokenFor(`mv-a-${crypto.randomUUID()}`), await tokenFor(`mv-b-${crypto.randomUUID()}`)];
    const endpoint = endpointFor();
    expect((await postJson("/push/subscriptions", { subscription: await subscription(endpoint) }, alice)).status).toBe(201);
    expect((await postJson("/push/subscriptions", { subscription: await subscription(endpoint) }, bob)).status).toBe(201);
    expect(await devices(alice)).toEqual([]);
    expect((await devices(bob)).map((d) => d.endpoint)).toEqual([endpoint]);
  });

  it("a user removes only their own subscription", async () => {
    const aliceId = `del-a-${crypto.randomUUID()}`;
    const [alice, bob] = [await tokenFor(aliceId), await tokenFor(`del-b-${crypto.randomUUID()}`)];
    const endpoint = endpointFor();
    expect((await postJson("/push/subscriptions", { subscription: await subscription(endpoint) }, alice)).status).toBe(201);
    await expectError(await del("/push/subscriptions", { endpoint }, bob), 404, "not_found");
    expect((await devices(alice)).map((d) => d.endpoint)).toEqual([endpoint]);
    const removed = await del("/push/subscriptions", { endpoint }, alice);
    expect(removed.status).toBe(204);
    expect(await removed.text()).toBe("");
    expect(await devices(alice)).toEqual([]);
    await expectError(await del("/push/subscriptions", { endpoint }, alice), 404, "not_found");
    await expectError(await del("/push/subscriptions", {}, alice), 400, "invalid_body");
    await expectError(await del("/push/subscriptions", { endpoint }, ""), 401, "missing_token");
  });

  it("keeps a user's 20 most recently posted devices", async () => {
    const token = await tokenFor(`cap-${crypto.randomUUID()}`);
    const endpoints: string[] = [];
    for (let i = 0; i < 21; i++) {
      endpoints.push(endpointFor());
      expect((await postJson("/push/subscriptions", { subscription: await subscription(endpoints[i]) }, token)).status).toBe(201);
    }
    const kept = (await devices(token)).map((d) => d.endpoint);
    expect(kept).toHaveLength(20);
    expect(kept).not.toContain(endpoints[0]);
    expect(kept).toContain(endpoints[20]);
  });

  it("the push routes answer 405 to other methods", async () => {
    await expectError(await call("/push/subscriptions", { method: "PUT" }), 405, "method_not_allowed");
    await expectError(await call("/push/test"), 405, "method_not_allowed");
    await expectError(await call("/push/vapid-public-key", { method: "POST" }), 405, "method_not_allowed");
  });
});
