/**
 * The embeddable chat (`/widget.js`, `<rooms-chat>`) and the React hook
 * (`@realtime-rooms/client/react`) in Debian's Chromium against a real
 * `wrangler dev`, embedded by host pages on OTHER origins (a tiny local
 * HTTP server per origin): one origin listed in CORS_ORIGINS, one not.
 * The host page is hostile (`* { … !important }`); the host app's token
 * endpoint is real (it signs with the server's secret) and can be made to
 * fail. Native WebSocket clients stand in for the other people in the room.
 * Screenshots go to test-output/ (and to docs/ with WIDGET_DOC_SCREENSHOTS=1).
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { EventEmitter } from "node:events";
import { build } from "esbuild";
import { SignJWT } from "jose";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeInChromium, launchChromium } from "./chromium";
import { postJson, tokenFor, WsClient } from "./clients";
import { HostServer, type HostResponse } from "./host-server";
import { DEFAULT_SECRETS, DevServer, freePort } from "./server";

const ROOT = resolve(import.meta.dirname, "../..");
const OUTPUT = join(ROOT, "test-output");
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

let server: DevServer;
let browser: Browser;
let allowedHost: HostServer;
let refusedHost: HostServer;
let reactBundle: string;
const run = Date.now();
/** Users whose token requests the host app answers with 503, and every token request's time, by user. */
const failingTokens = new Set<string>();
const tokenRequests = new Map<string, number[]>();
const tokenRequested = new EventEmitter();

/** Resolves once the host app has been asked for `user`'s token `count` times. */
function tokenRequestsReach(user: string, count: number): Promise<number[]> {
  return new Promise((resolve) => {
    const check = () => {
      const times = tokenRequests.get(user) ?? [];
      if (times.length < count) return;
      tokenRequested.off("request", check);
      resolve(times);
    };
    tokenRequested.on("request", check);
    check();
  });
}
const pageErrors: string[] = [];
/** Written to test-output/, and copied to docs/ (docs/widget.md shows them) when WIDGET_DOC_SCREENSHOTS=1. */
const DOC_SCREENSHOTS = ["widget-open.png", "widget-minimised.png", "widget-dark.png", "widget-refused-origin.png"];

/** The host app: a page with hostile CSS embedding the widget, its token endpoint, and the React page. */
async function hostApp(url: URL): Promise<HostResponse | undefined> {
  const user = url.searchParams.get("user") ?? "guest";
  switch (url.pathname) {
    case "/token": {
      tokenRequests.set(user, [...(tokenRequests.get(user) ?? []), Date.now()]);
      tokenRequested.emit("request");
      if (failingTokens.has(user)) return { status: 503, type: "application/json", body: '{"error":"down for maintenance"}' };
      const name = user[0]!.toUpperCase() + user.slice(1);
      const ttl = Number(url.searchParams.get("ttl") ?? 3600);
      const token = await new SignJWT({ name, rooms: ["*"] })
        .setProtectedHeader({ alg: "HS256" })
        .setSubject(user)
        .setIssuedAt()
        .setExpirationTime(Math.floor(Date.now() / 1000) + ttl)
        .sign(new TextEncoder().encode(DEFAULT_SECRETS.JWT_SECRET));
      return { type: "application/json", body: JSON.stringify({ token }) };
    }
    case "/widget.html":
      const tokenUrl = `/token?${new URLSearchParams({ user, ttl: url.searchParams.get("ttl") ?? "3600" })}`;
      return { type: "text/html", body: widgetPage(url.searchParams.get("room")!, tokenUrl, url.searchParams.get("css") ?? "hostile", url.searchParams.get("via") === "property") };
    case "/react.html":
      return { type: "text/html", body: '<!doctype html><html lang="en"><head><title>React host</title></head><body><div id="root"></div><script type="module" src="/react.js"></script></body></html>' };
    case "/react.js":
      return { type: "text/javascript", body: reactBundle };
  }
  return undefined;
}

const HOSTILE_CSS = "* { font-size: 40px !important; color: red !important; line-height: 3 !important; font-family: serif !important; letter-spacing: 4px !important }";
/** A plain product page, for the screenshots in docs/widget.md. */
const SITE_CSS = `body { margin: 0; font: 16px/1.5 system-ui, sans-serif; color: #1d2330; background: #f4f5f7 }
  header { padding: 18px 48px; background: #fff; border-bottom: 1px solid #e3e6ec; font-weight: 700; font-size: 18px }
  main { max-width: 560px; padding: 40px 48px } h1 { font-size: 30px; margin: 0 0 12px } p { color: #555e70 }`;

/** `viaProperty`: the page gives the token through the `getToken` property, set before the widget's module has run. */
function widgetPage(room: string, tokenUrl: string, css: string, viaProperty = false): string {
  const chat = viaProperty
    ? `<rooms-chat room="${room}" title="Support" accent="#0b7a6f"></rooms-chat>
  <script>document.querySelector("rooms-chat").getToken = () => fetch(${JSON.stringify(tokenUrl)}).then((r) => r.json()).then((b) => b.token);</script>`
    : `<rooms-chat room="${room}" token-url="${tokenUrl}" title="Support" accent="#0b7a6f"></rooms-chat>`;
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Host page</title><style>${css === "site" ? SITE_CSS : HOSTILE_CSS}</style>
<script type="module" src="${server.url}/widget.js"></script>
<script>
  window.__events = [];
  addEventListener("DOMContentLoaded", () => {
    const chat = document.querySelector("rooms-chat");
    for (const type of ["message", "status", "unread"]) {
      chat.addEventListener(type, (e) => window.__events.push({ type, detail: JSON.parse(JSON.stringify(e.detail ?? null)), message: e.detail?.error?.message }));
    }
  });
</script></head>
<body>
  <header>Acme Helpdesk</header>
  <main><h1>How can we help?</h1><p>Browse the guides, or ask us in the chat at the bottom right: a person answers during office hours.</p></main>
  ${chat}
</body>
</html>`;
}

beforeAll(async () => {
  // First, so a missing browser (CI) fails before any server is started.
  browser = await launchChromium();
  const clientBuild = spawnSync(join(ROOT, "node_modules/.bin/node"), [join(ROOT, "client/build.mjs")], { cwd: ROOT, encoding: "utf8" });
  if (clientBuild.status !== 0) throw new Error(`client build failed:\n${clientBuild.stdout}\n${clientBuild.stderr}`);
  // The app imports `@realtime-rooms/client/react` as an app would: resolved through client/package.json's exports.
  const modules = mkdtempSync(join(tmpdir(), "rooms-react-app-"));
  mkdirSync(join(modules, "@realtime-rooms"));
  symlinkSync(join(ROOT, "client"), join(modules, "@realtime-rooms/client"));
  const bundled = await build({
    entryPoints: [join(import.meta.dirname, "fixtures/react-chat.ts")],
    nodePaths: [modules],
    bundle: true,
    format: "esm",
    write: false,
    define: { "process.env.NODE_ENV": '"development"' }, // StrictMode double-invokes effects in development builds only
    logLevel: "warning",
  });
  reactBundle = bundled.outputFiles[0]!.text;
  mkdirSync(OUTPUT, { recursive: true });
  const [allowedPort, refusedPort] = [await freePort(), await freePort()];
  [allowedHost, refusedHost] = await Promise.all([HostServer.start(allowedPort, hostApp), HostServer.start(refusedPort, hostApp)]);
  server = await DevServer.start({ vars: { CORS_ORIGINS: `https://app.example,${allowedHost.url}` } });
}, 180_000);

afterAll(async () => {
  if (process.env.WIDGET_DOC_SCREENSHOTS === "1") {
    for (const file of DOC_SCREENSHOTS) copyFileSync(join(OUTPUT, file), join(ROOT, "docs", file));
  }
  await browser?.close();
  await Promise.all([server?.stop(), allowedHost?.close(), refusedHost?.close()]);
});

async function open(url: string, options: { colorScheme?: "light" | "dark"; trackSockets?: boolean } = {}): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1100, height: 760 }, colorScheme: options.colorScheme ?? "light" });
  if (options.trackSockets) {
    await context.addInitScript(() => {
      const Native = window.WebSocket;
      const sockets: WebSocket[] = ((window as unknown as { __sockets: WebSocket[] }).__sockets = []);
      window.WebSocket = class CountedWebSocket extends Native {
        constructor(url: string | URL, protocols?: string | string[]) {
          super(url, protocols);
          sockets.push(this);
        }
      };
    });
  }
  const page = await context.newPage();
  page.on("pageerror", (error) => pageErrors.push(error.message));
  await page.goto(url);
  return page;
}

function events(page: Page, type: string): Promise<{ detail: any; message?: string }[]> {
  return page.evaluate((t) => (window as any).__events.filter((e: { type: string }) => e.type === t), type);
}

/** A delivered message in the widget's panel (locators pierce its open shadow root). */
function shownMessage(page: Page, text: string) {
  return page.locator("rooms-chat li.message:not(.pending) .bubble").filter({ hasText: text });
}

async function wsPerson(name: string, room: string): Promise<WsClient> {
  const ws = await WsClient.open(`${server.wsUrl}/rooms/${room}/ws?token=${await tokenFor(name.toLowerCase(), { rooms: ["*"], name })}`);
  await ws.until((frames) => frames.some((f) => f.type === "welcome"), "welcome");
  return ws;
}

describeInChromium("<rooms-chat> on a page of another origin", () => {
  const room = `widget-${run}`;
  let page: Page;
  let bob: WsClient;

  it("loads cross-origin with CORS headers, connects while minimised and shows history when opened", async () => {
    const script = await fetch(`${server.url}/widget.js`, { headers: { origin: allowedHost.url } });
    expect(script.status).toBe(200);
    expect(script.headers.get("access-control-allow-origin")).toBe("*");
    expect(script.headers.get("cache-control")).toMatch(/max-age=\d+/);

    bob = await wsPerson("Bob", room);
    const earlier = await postJson(`${server.url}/rooms/${room}/messages`, { data: { text: "Earlier: is anyone there?" } }, await tokenFor("bob", { rooms: ["*"], name: "Bob" }));
    expect(earlier.status).toBe(201);

    page = await open(`${allowedHost.url}/widget.html?room=${room}&user=alice`);
    await page.locator("rooms-chat #status[data-state=connected]").waitFor({ state: "attached" });
    expect(await page.locator("rooms-chat #panel").isHidden()).toBe(true);
    expect(await page.locator("rooms-chat #launcher").getAttribute("aria-expanded")).toBe("false");

    await page.locator("rooms-chat #launcher").click();
    await shownMessage(page, "Earlier: is anyone there?").waitFor();
    expect(await page.locator("rooms-chat #status-text").textContent()).toBe("Connected · WebSocket");
    expect(await page.locator("rooms-chat #title").textContent()).toBe("Support");
    await page.locator("rooms-chat #presence li", { hasText: "Bob" }).waitFor();
    await page.locator("rooms-chat #presence li", { hasText: "Alice (you)" }).waitFor();
    // Opening from the launcher puts the cursor in the send box.
    expect(await page.evaluate(() => document.querySelector("rooms-chat")!.shadowRoot!.activeElement?.id)).toBe("input");
  });

  it("sends with Enter (Shift+Enter breaks the line) to a native WebSocket client", async () => {
    const input = page.locator("rooms-chat #input");
    await input.fill("Hello from the widget");
    await input.press("Shift+Enter");
    await input.pressSequentially("second line");
    await input.press("Enter");
    const received = await bob.until((frames) => frames.find((f) => f.type === "message" && f.message.from?.id === "alice")?.message, "alice's message");
    expect(received.data.text).toBe("Hello from the widget\nsecond line");
    await shownMessage(page, "second line").waitFor();
    expect(await input.inputValue()).toBe("");
  });

  it("shows server notifications that carry text, typing, and read receipts", async () => {
    const notify = await postJson(`${server.url}/rooms/${room}/notify`, { event: "ticket_assigned", data: { text: "Ticket #7 is now assigned to Bob" } }, DEFAULT_SECRETS.NOTIFY_SECRET);
    expect(notify.status).toBe(202);
    await shownMessage(page, "ticket_assigned: Ticket #7 is now assigned to Bob").waitFor();

    bob.send({ type: "typing" });
    await page.locator("rooms-chat #typing", { hasText: "Bob is typing…" }).waitFor();
    bob.send({ type: "send", data: { text: "Hi Alice, Bob here" }, clientId: "b-1" });
    await shownMessage(page, "Hi Alice, Bob here").waitFor();
    await page.locator("rooms-chat #typing").filter({ hasText: /^$/ }).waitFor(); // a message ends the typing indicator

    const aliceSeq = bob.messages().find((m) => m.from?.id === "alice").seq;
    bob.send({ type: "read", seq: aliceSeq });
    await page.locator("rooms-chat .receipt", { hasText: "Seen by Bob" }).waitFor();
    // Alice has the panel open at the bottom: she read Bob's message, and Bob hears it.
    await bob.until((frames) => frames.some((f) => f.type === "read" && f.user?.id === "alice"), "alice's read receipt");
  });

  it("renders markup in messages as text", async () => {
    const payload = `<img src=x onerror="window.__xss=1"><script>window.__xss=2</script><b>bold?</b>`;
    bob.send({ type: "send", data: { text: payload } });
    const bubble = shownMessage(page, "bold?");
    await bubble.waitFor();
    expect(await bubble.textContent()).toBe(payload);
    expect(await page.locator("rooms-chat #messages img, rooms-chat #messages script, rooms-chat #messages b").count()).toBe(0);
    expect(await page.evaluate(() => (window as { __xss?: unknown }).__xss)).toBeUndefined();
  });

  it("keeps the page's hostile CSS out of its text", async () => {
    const style = await shownMessage(page, "Hi Alice, Bob here").evaluate((node) => {
      const s = getComputedStyle(node);
      return { fontSize: s.fontSize, color: s.color, lineHeight: s.lineHeight, letterSpacing: s.letterSpacing, fontFamily: s.fontFamily };
    });
    expect(style.fontSize).toBe("14px");
    expect(style.color).not.toBe("rgb(255, 0, 0)");
    expect(style.letterSpacing).toBe("normal");
    expect(style.fontFamily).toContain("system-ui");
    expect(await page.locator("h1").evaluate((node) => getComputedStyle(node).fontSize)).toBe("40px"); // the hostile rule does apply to the page
  });

  it("takes its accent colour and position from attributes", async () => {
    const launcher = page.locator("rooms-chat #launcher");
    expect(await launcher.evaluate((node) => getComputedStyle(node).backgroundColor)).toBe("rgb(11, 122, 111)"); // accent="#0b7a6f"
    const side = () => launcher.evaluate((node) => (node.getBoundingClientRect().left < innerWidth / 2 ? "left" : "right"));
    expect(await side()).toBe("right");
    await page.locator("rooms-chat").evaluate((node) => node.setAttribute("position", "bottom-left"));
    expect(await side()).toBe("left");
    await page.locator("rooms-chat").evaluate((node) => node.removeAttribute("position"));
    expect(await side()).toBe("right");
    expect(await page.locator("rooms-chat #status").getAttribute("data-state")).toBe("connected"); // styling changes do not reconnect
  });

  it("follows prefers-reduced-motion and prefers-color-scheme", async () => {
    const panel = page.locator("rooms-chat #panel");
    const look = () => panel.evaluate((node) => ({ animation: getComputedStyle(node).animationName, background: getComputedStyle(node).backgroundColor }));
    await page.emulateMedia({ reducedMotion: "reduce", colorScheme: "dark" });
    expect(await look()).toEqual({ animation: "none", background: "rgb(27, 31, 39)" });
    await page.emulateMedia({ reducedMotion: "no-preference", colorScheme: "light" });
    expect(await look()).toEqual({ animation: "rooms-chat-in", background: "rgb(255, 255, 255)" });
  });

  it("has no serious or critical accessibility violations (axe-core), open and minimised", async () => {
    await page.addScriptTag({ content: AXE_SOURCE });
    const scan = () =>
      page.evaluate(async () => {
        const axe = (window as any).axe;
        const result = await axe.run({ include: [["rooms-chat"]] }, { resultTypes: ["violations"] });
        return result.violations
          .filter((v: { impact: string }) => v.impact === "serious" || v.impact === "critical")
          .map((v: { id: string; help: string; nodes: { target: unknown }[] }) => `${v.id}: ${v.help} (${JSON.stringify(v.nodes.map((n) => n.target))})`);
      });
    expect(await scan()).toEqual([]);
    await page.locator("rooms-chat #minimise").click();
    await page.locator("rooms-chat #panel").waitFor({ state: "hidden" });
    expect(await scan()).toEqual([]);
  });

  it("counts unread messages on the launcher's badge while minimised", async () => {
    const launcher = page.locator("rooms-chat #launcher");
    expect(await page.evaluate(() => document.querySelector("rooms-chat")!.shadowRoot!.activeElement?.id)).toBe("launcher"); // focus went back to the launcher
    bob.send({ type: "send", data: { text: "Ping while you are away" } });
    await page.locator("rooms-chat #badge", { hasText: "1" }).waitFor();
    expect(await launcher.getAttribute("aria-label")).toBe("Open Support (1 unread message)");
    await page.waitForFunction(() => (window as any).__events.some((e: any) => e.type === "unread" && e.detail.count === 1));

    await launcher.click();
    await page.locator("rooms-chat #badge").waitFor({ state: "hidden" });
    await page.waitForFunction(() => (window as any).__events.some((e: any) => e.type === "unread" && e.detail.count === 0));
    await shownMessage(page, "Ping while you are away").waitFor();
  });

  it("works from the keyboard: Escape minimises to the launcher, Enter opens it again with the cursor in the send box", async () => {
    const focused = () => page.evaluate(() => document.querySelector("rooms-chat")!.shadowRoot!.activeElement?.id);
    await page.locator("rooms-chat #input").focus();
    await page.keyboard.press("Escape");
    await page.locator("rooms-chat #panel").waitFor({ state: "hidden" });
    expect(await focused()).toBe("launcher");
    await page.keyboard.press("Enter");
    await page.locator("rooms-chat #panel").waitFor();
    expect(await focused()).toBe("input");
    await page.keyboard.press("Shift+Tab"); // back to the conversation, which scrolls from the keyboard
    expect(await focused()).toBe("scroller");
    await page.keyboard.press("Shift+Tab");
    expect(await focused()).toBe("close");
  });

  it("leaves a reader who scrolled up where they are and offers the new messages", async () => {
    for (let i = 1; i <= 14; i++) bob.send({ type: "send", data: { text: `Filler line ${i} so that the conversation scrolls` } });
    await shownMessage(page, "Filler line 14 so").waitFor();
    const scroller = page.locator("rooms-chat #scroller");
    await scroller.evaluate((node) => (node.scrollTop = 0));
    await page.waitForFunction(() => document.querySelector("rooms-chat")!.shadowRoot!.getElementById("scroller")!.scrollTop === 0);
    bob.send({ type: "send", data: { text: "Something new below" } });
    await page.locator("rooms-chat #new-messages").waitFor();
    await shownMessage(page, "Something new below").waitFor({ state: "attached" });
    expect(await scroller.evaluate((node) => node.scrollTop)).toBe(0);
    await page.locator("rooms-chat #new-messages").click();
    await page.locator("rooms-chat #new-messages").waitFor({ state: "hidden" });
    await shownMessage(page, "Something new below").waitFor();
  });

  it("dispatched message, status and unread events", async () => {
    const messages = await events(page, "message");
    expect(messages.map((e) => e.detail.data.text)).toEqual(expect.arrayContaining(["Hello from the widget\nsecond line", "Ticket #7 is now assigned to Bob", "Hi Alice, Bob here"]));
    expect(messages.every((e) => typeof e.detail.seq === "number")).toBe(true);
    const statuses = await events(page, "status");
    expect(statuses.some((e) => e.detail.state === "connected" && e.detail.transport === "websocket")).toBe(true);
    expect((await events(page, "unread")).map((e) => e.detail.count)).toContain(1);
  });

  it("takes the screenshots for docs/widget.md on a plain product page", async () => {
    const docsRoom = `support-${run}`;
    const agent = await wsPerson("Sam", docsRoom);
    const customer = await open(`${allowedHost.url}/widget.html?room=${docsRoom}&user=maria&css=site`);
    await customer.locator("rooms-chat #status[data-state=connected]").waitFor({ state: "attached" });
    agent.send({ type: "send", data: { text: "Hi Maria! I'm Sam from support. How can I help?" } });
    await customer.locator("rooms-chat #badge", { hasText: "1" }).waitFor();
    await customer.screenshot({ path: join(OUTPUT, "widget-minimised.png") });
    await customer.locator("rooms-chat #launcher").click();
    await shownMessage(customer, "How can I help?").waitFor();
    await customer.locator("rooms-chat #input").fill("My invoice shows the wrong address.");
    await customer.locator("rooms-chat #input").press("Enter");
    await shownMessage(customer, "wrong address").waitFor();
    await postJson(`${server.url}/rooms/${docsRoom}/notify`, { event: "ticket_opened", data: { text: "Ticket #1042 opened" } }, DEFAULT_SECRETS.NOTIFY_SECRET);
    await shownMessage(customer, "Ticket #1042 opened").waitFor();
    const mariaSeq = await agent.until((frames) => frames.find((f) => f.type === "message" && f.message.from?.id === "maria")?.message.seq, "maria's message");
    agent.send({ type: "read", seq: mariaSeq });
    await customer.locator("rooms-chat .receipt", { hasText: "Seen by Sam" }).waitFor();
    agent.send({ type: "typing" });
    await customer.locator("rooms-chat #typing", { hasText: "Sam is typing…" }).waitFor();
    await customer.locator("rooms-chat #input").blur();
    await customer.screenshot({ path: join(OUTPUT, "widget-open.png") });
    await customer.emulateMedia({ colorScheme: "dark" });
    await customer.locator("rooms-chat #panel").screenshot({ path: join(OUTPUT, "widget-dark.png") });
    agent.close();
    await customer.context().close();
  });

  afterAll(async () => {
    bob?.close();
    await page?.context().close();
  });
});

describeInChromium("<rooms-chat> when things go wrong", () => {
  it("a failing token endpoint: a clear state in the panel, retries with backoff, then connects", async () => {
    const room = `widget-token-${run}`;
    failingTokens.add("carol");
    const page = await open(`${allowedHost.url}/widget.html?room=${room}&user=carol`);
    await page.locator("rooms-chat #launcher").click();
    await page.locator("rooms-chat #notice-text", { hasText: "Cannot get a chat token" }).waitFor();
    expect(await page.locator("rooms-chat #notice-text").textContent()).toContain("answered 503");
    expect(await page.locator("rooms-chat #status-text").textContent()).toBe("No chat token");
    await page.locator("rooms-chat #retry").waitFor();
    // It asks again by itself, after a backoff (equal jitter: at least half of the first 1 s step).
    await page.waitForFunction(() => (window as any).__events.filter((e: any) => e.type === "status" && e.detail.reason === "token").length >= 2);
    const [first, second] = tokenRequests.get("carol")!;
    expect(second! - first!).toBeGreaterThanOrEqual(500);

    failingTokens.delete("carol");
    await page.locator("rooms-chat #status[data-state=connected]").waitFor();
    await page.locator("rooms-chat #notice").waitFor({ state: "hidden" });
    const asked = tokenRequests.get("carol")!;
    for (let i = 1; i < asked.length; i++) expect(asked[i]! - asked[i - 1]!).toBeGreaterThanOrEqual(500); // never a loop
    await page.context().close();
  });

  it("getToken set before the script ran: asked for a new token before the current one expires", async () => {
    const ttlSeconds = 20;
    const page = await open(`${allowedHost.url}/widget.html?room=widget-refresh-${run}&user=dan&ttl=${ttlSeconds}&via=property`);
    expect(await page.locator("rooms-chat").getAttribute("token-url")).toBeNull();
    await page.locator("rooms-chat #status[data-state=connected]").waitFor({ state: "attached" });
    const [first, second] = await tokenRequestsReach("dan", 2);
    // Due a fifth of the lifetime before expiry (16 s in): not early, and before the first token ran out.
    expect(second! - first!).toBeGreaterThanOrEqual(10_000);
    expect(second! - first!).toBeLessThan(ttlSeconds * 1000);
    expect(await page.locator("rooms-chat #status").getAttribute("data-state")).toBe("connected");
    await page.context().close();
  }, 60_000);

  it("an origin not in CORS_ORIGINS: the panel says so, and the server refuses its WebSocket", async () => {
    const room = `widget-refused-${run}`;
    const page = await open(`${refusedHost.url}/widget.html?room=${room}&user=eve`);
    await page.locator("rooms-chat #launcher").click();
    await page.locator("rooms-chat #notice-text", { hasText: "is not allowed to use the chat service" }).waitFor();
    expect(await page.locator("rooms-chat #notice-text").textContent()).toContain(`This site (${refusedHost.url})`);
    expect(await page.locator("rooms-chat #notice-text").textContent()).toContain("CORS_ORIGINS");
    expect(await page.locator("rooms-chat #status-text").textContent()).toBe("Not allowed on this site");
    expect((await events(page, "status")).some((e) => e.detail.reason === "origin")).toBe(true);
    expect(tokenRequests.get("eve")).toBeUndefined(); // it did not even ask the host for a token
    await page.locator("rooms-chat #panel").screenshot({ path: join(OUTPUT, "widget-refused-origin.png") });

    // The Origin check on WebSocket upgrades refuses this page too, whatever the widget does.
    const token = await tokenFor("eve");
    const opened = await page.evaluate(
      (url) => new Promise<boolean>((resolve) => {
        const ws = new WebSocket(url);
        ws.onopen = () => resolve(true);
        ws.onclose = () => resolve(false);
      }),
      `${server.wsUrl}/rooms/${room}/ws?token=${token}`,
    );
    expect(opened).toBe(false);
    await page.context().close();
  });
});

describeInChromium("useRoom in a React app (StrictMode)", () => {
  it("shares one connection between components, sends and receives, and closes it on unmount", async () => {
    const room = `react-${run}`;
    const bob = await wsPerson("Bob", room);
    const page = await open(`${allowedHost.url}/react.html?room=${room}&user=rita&server=${encodeURIComponent(server.url)}`, { trackSockets: true });
    await page.locator("#conversation[data-status=connected][data-transport=websocket]").waitFor();
    await page.locator("#here", { hasText: "Bob" }).waitFor();
    // StrictMode ran every effect twice, and two components use the room: still one socket.
    expect(await page.evaluate(() => (window as any).__sockets.length)).toBe(1);

    await page.fill("#draft", "Hello from React");
    await page.click("#send");
    const received = await bob.until((frames) => frames.find((f) => f.type === "message" && f.message.from?.id === "rita")?.message, "rita's message");
    expect(received.data.text).toBe("Hello from React");

    bob.send({ type: "send", data: { text: "Hi Rita" } });
    await page.locator("#messages li", { hasText: "Hi Rita" }).waitFor();
    await page.locator("#counter", { hasText: "2 messages" }).waitFor();
    bob.send({ type: "typing" });
    await page.locator("#counter", { hasText: "Bob is typing" }).waitFor();

    await page.click("#toggle");
    await page.locator("#unmounted").waitFor();
    await page.waitForFunction(() => (window as any).__sockets.every((s: WebSocket) => s.readyState === WebSocket.CLOSED));
    await bob.until((frames) => frames.some((f) => f.type === "presence" && f.action === "leave" && f.user?.id === "rita"), "rita leaving");
    expect(await page.evaluate(() => (window as any).__sockets.length)).toBe(1);
    bob.close();
    await page.context().close();
  });

  it("had no uncaught page errors", () => {
    expect(pageErrors).toEqual([]);
  });
});
