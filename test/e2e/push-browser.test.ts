/**
 * The demo page's "Enable notifications" in real Chromium against a real
 * `wrangler dev` (production endpoint policy: no PUSH_ALLOW_HTTP_ENDPOINTS).
 *
 * Offline, Chromium cannot reach its push service, so
 * `pushManager.subscribe` fails there ("Registration failed"). The test
 * therefore grants the notifications permission and replaces only
 * `PushManager.prototype.subscribe`/`getSubscription` with a stand-in that
 * records the applicationServerKey the page passes and answers with a
 * subscription made of a real P-256 key and auth secret, as Chromium's
 * would. Everything else is the real thing: the page's flow, the service
 * worker's registration, the POST the server validates and stores, the
 * service worker showing a push (delivered through the DevTools protocol,
 * as Chromium's push service would hand it over) and opening its room on a
 * click.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { type Browser, type BrowserContext, type Page, type Request } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeInChromium, launchChromium } from "./chromium";
import { tokenFor } from "./clients";
import { vapidKeyPair } from "./push-service";
import { DevServer } from "./server";

const ROOT = resolve(import.meta.dirname, "../..");

let server: DevServer;
let browser: Browser;
let vapid: { publicKey: string; privateKey: string };

beforeAll(async () => {
  const build = spawnSync(join(ROOT, "node_modules/.bin/node"), [join(ROOT, "client/build.mjs")], { cwd: ROOT, encoding: "utf8" });
  if (build.status !== 0) throw new Error(`client build failed:\n${build.stdout}\n${build.stderr}`);
  vapid = await vapidKeyPair();
  // The browser first: a missing one throws before a server is started (and left behind).
  [browser, server] = await Promise.all([launchChromium(), DevServer.start({ vars: { DEV_TOKENS: "1", VAPID_PUBLIC_KEY: vapid.publicKey, VAPID_PRIVATE_KEY: vapid.privateKey, VAPID_SUBJECT: "mailto:ops@rooms.example" } })]);
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

/**
 * Runs in the page before its scripts: the demo identity, and the stand-in
 * for the browser's push registration. Its subscription lives in
 * sessionStorage, so a reloaded page finds it like a real one.
 */
function standInPushService(identity: { id: string; name: string }): void {
  sessionStorage.setItem("rooms-demo:identity", JSON.stringify(identity));
  const STORE = "test:push-subscription";
  const b64url = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const fromB64url = (text: string) => Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  const state = window as unknown as { __subscribeKeys: string[] };
  state.__subscribeKeys = [];
  const subscription = (saved: { json: { endpoint: string }; serverKey: string }) =>
    ({
      endpoint: saved.json.endpoint,
      expirationTime: null,
      options: { userVisibleOnly: true, applicationServerKey: fromB64url(saved.serverKey).buffer },
      toJSON: () => saved.json,
      unsubscribe: async () => (sessionStorage.removeItem(STORE), true),
    }) as unknown as PushSubscription;
  PushManager.prototype.subscribe = async function (options?: PushSubscriptionOptionsInit) {
    const serverKey = b64url(new Uint8Array(options!.applicationServerKey as ArrayBuffer));
    state.__subscribeKeys.push(serverKey);
    const pair = (await crypto.subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"])) as CryptoKeyPair;
    const json = {
      endpoint: `https://push.example.test/send/${crypto.randomUUID()}`,
      expirationTime: null,
      keys: { p256dh: b64url(new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey))), auth: b64url(crypto.getRandomValues(new Uint8Array(16))) },
    };
    sessionStorage.setItem(STORE, JSON.stringify({ json, serverKey }));
    return subscription({ json, serverKey });
  };
  PushManager.prototype.getSubscription = async function () {
    const saved = sessionStorage.getItem(STORE);
    return saved ? subscription(JSON.parse(saved)) : null;
  };
}

type CDPSession = Awaited<ReturnType<BrowserContext["newCDPSession"]>>;

/** The id of the registration for `scope`, from the ServiceWorker domain's first report of it (sent on enable). */
async function activeRegistrationId(cdp: CDPSession, scope: string): Promise<string> {
  const found = new Promise<string>((resolve) =>
    cdp.on("ServiceWorker.workerRegistrationUpdated", ({ registrations }) => {
      const registration = registrations.find((r) => r.scopeURL === scope && !r.isDeleted);
      if (registration) resolve(registration.registrationId);
    }),
  );
  await cdp.send("ServiceWorker.enable");
  return found;
}

/**
 * Chromium's background-services log for this page's origin: `next(service, name)` resolves with the
 * metadata of the next event of that name (e.g. "Push event completed" {Status: "Success"}).
 */
function backgroundServiceLog(cdp: CDPSession) {
  type Service = "pushMessaging" | "notifications";
  const waiting: { service: Service; name: string; resolve: (metadata: Record<string, string>) => void }[] = [];
  cdp.on("BackgroundService.backgroundServiceEventReceived", ({ backgroundServiceEvent: event }) => {
    const index = waiting.findIndex((w) => w.service === event.service && w.name === event.eventName);
    if (index < 0) return;
    const [waiter] = waiting.splice(index, 1);
    waiter!.resolve(Object.fromEntries(event.eventMetadata.map(({ key, value }) => [key, value])));
  });
  return {
    async record(service: Service): Promise<void> {
      await cdp.send("BackgroundService.startObserving", { service });
      await cdp.send("BackgroundService.setRecording", { service, shouldRecord: true });
    },
    next(service: Service, name: string): Promise<Record<string, string>> {
      return new Promise((resolve) => waiting.push({ service, name, resolve }));
    },
  };
}

async function devices(user: string): Promise<any[]> {
  const response = await fetch(`${server.url}/push/subscriptions`, { headers: { authorization: `Bearer ${await tokenFor(user)}` } });
  return ((await response.json()) as any).subscriptions;
}

describeInChromium("demo page: Enable notifications", () => {
  let context: BrowserContext;
  let page: Page;
  const room = `push-demo-${Date.now()}`;
  const user = { id: `pia-${Date.now()}`, name: "Pia" };

  it("subscribes with the server's key, registers /sw.js and posts the subscription", async () => {
    context = await browser.newContext();
    await context.grantPermissions(["notifications"], { origin: server.url });
    await context.addInitScript(standInPushService, user);
    page = await context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (error) => errors.push(error.message));
    await page.goto(`${server.url}/?room=${room}`);
    await page.locator("#status[data-state=connected]").waitFor();
    const button = page.locator("#push-toggle");
    await button.waitFor();
    expect(await button.textContent()).toBe("Enable notifications");

    const posted = page.waitForRequest((r: Request) => r.url() === `${server.url}/push/subscriptions` && r.method() === "POST");
    await button.click();
    const request = await posted;
    await page.locator("#push-toggle[data-state=on]").waitFor();

    expect(await page.evaluate(() => (window as unknown as { __subscribeKeys: string[] }).__subscribeKeys)).toEqual([vapid.publicKey]);
    const body = request.postDataJSON();
    expect(body).toMatchObject({ deviceType: "browser", deviceName: "Chrome on Linux", subscription: { endpoint: expect.stringMatching(/^https:\/\/push\.example\.test\/send\//), keys: { p256dh: expect.any(String), auth: expect.any(String) } } });
    expect(request.headers().authorization).toMatch(/^Bearer /);
    expect((await request.response())!.status()).toBe(201);
    expect((await devices(user.id)).map((d) => [d.endpoint, d.deviceName])).toEqual([[body.subscription.endpoint, "Chrome on Linux"]]);

    const worker = await page.evaluate(async () => (await navigator.serviceWorker.getRegistration("/"))?.active?.scriptURL);
    expect(worker).toBe(`${server.url}/sw.js`);
    expect(await page.locator("#push-note").textContent()).toBe("You will be notified while away.");
    expect(errors).toEqual([]);
    mkdirSync(join(ROOT, "test-output"), { recursive: true });
    await page.screenshot({ path: join(ROOT, "test-output", "push-demo-enabled.png") });
  });

  it("the service worker shows a push and a click on it opens the room", async () => {
    const cdp = await context.newCDPSession(page);
    // Chromium's own log of background services (DevTools > Application > Background services): it records
    // the push event reaching the worker and the notification being displayed, so the test awaits those
    // instead of polling for their effects.
    const background = backgroundServiceLog(cdp);
    await background.record("pushMessaging");
    await background.record("notifications");
    const registrationId = await page.evaluate(async () => {
      // The worker controls this page once it has activated and claimed its clients (sw.js does both).
      const registration = await navigator.serviceWorker.ready;
      if (!navigator.serviceWorker.controller) await new Promise((resolve) => navigator.serviceWorker.addEventListener("controllerchange", resolve, { once: true }));
      return registration.active!.scriptURL;
    }).then(async (scriptURL) => {
      expect(scriptURL).toBe(`${server.url}/sw.js`);
      return activeRegistrationId(cdp, `${server.url}/`);
    });

    const other = `${room}-other`;
    const push = { title: "Ann in the other room", body: "Are you coming?", url: `/?room=${other}`, room: other, seq: 3, event: "message" };
    const completed = background.next("pushMessaging", "Push event completed");
    const displayed = background.next("notifications", "Notification displayed");
    await cdp.send("ServiceWorker.deliverPushMessage", { origin: `${server.url}/`, registrationId, data: JSON.stringify(push) });
    expect(await completed).toMatchObject({ Status: "Success" });
    await displayed;
    const notifications = await page.evaluate(async () =>
      (await (await navigator.serviceWorker.getRegistration("/"))!.getNotifications()).map((n) => ({ title: n.title, body: n.body, tag: n.tag, data: n.data })),
    );
    expect(notifications).toEqual([{ title: push.title, body: push.body, tag: `room:${other}`, data: { url: push.url, room: other, seq: 3, event: "message" } }]);

    // A click, as the browser would dispatch it to the worker: the page (a tab of this site) is steered to the room.
    // Playwright learns of a (re)started worker by an event of its own: await it rather than read the list once.
    const worker = context.serviceWorkers()[0] ?? (await context.waitForEvent("serviceworker"));
    await worker.evaluate(async () => {
      // Service worker globals (this file is typed for pages).
      const scope = self as unknown as { registration: ServiceWorkerRegistration; NotificationEvent: new (type: string, init: { notification: Notification }) => Event };
      const [notification] = await scope.registration.getNotifications();
      self.dispatchEvent(new scope.NotificationEvent("notificationclick", { notification: notification! }));
    });
    await page.waitForURL(`${server.url}/?room=${other}`);
    await page.locator("#room-title", { hasText: `#${other}` }).waitFor();
  });

  it("clicking again turns notifications off: unsubscribed and deleted on the server", async () => {
    await page.locator("#push-toggle[data-state=on]").waitFor(); // the reloaded page re-posted its subscription
    const deleted = page.waitForRequest((r: Request) => r.url() === `${server.url}/push/subscriptions` && r.method() === "DELETE");
    await page.click("#push-toggle");
    expect((await (await deleted).response())!.status()).toBe(204);
    await page.locator("#push-toggle[data-state=off]").waitFor();
    expect(await devices(user.id)).toEqual([]);
    await context.close();
  });
});
