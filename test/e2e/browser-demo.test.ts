/**
 * The demo chat page in real Chromium (Debian's /usr/bin/chromium, driven by
 * playwright-core; never a downloaded browser) against a real `wrangler dev`
 * with DEV_TOKENS on: people in separate browser contexts chat, one of them
 * behind a WebSocket blocker, one on long-poll by `?transport=`; user text
 * is rendered as text; no page throws. Screenshots go to test-output/.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeInChromium, launchChromium } from "./chromium";
import { DevServer } from "./server";

const ROOT = resolve(import.meta.dirname, "../..");
const OUTPUT = join(ROOT, "test-output");

let server: DevServer;
let browser: Browser;
const room = `browser-${Date.now()}`;
const pageErrors: string[] = [];
const consoleErrors: string[] = [];
const pages: Record<string, Page> = {};

beforeAll(async () => {
  // The page's script is built from client/; build it so the test runs what is in the tree.
  const build = spawnSync(join(ROOT, "node_modules/.bin/node"), [join(ROOT, "client/build.mjs")], { cwd: ROOT, encoding: "utf8" });
  if (build.status !== 0) throw new Error(`client build failed:\n${build.stdout}\n${build.stderr}`);
  mkdirSync(OUTPUT, { recursive: true });
  // The browser first: a missing one throws before a server is started (and left behind).
  [browser, server] = await Promise.all([launchChromium(), DevServer.start({ vars: { DEV_TOKENS: "1" } })]);
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

/** Replaces WebSocket with one whose every connection is refused, like a proxy that blocks upgrades. */
function blockWebSockets(): void {
  const Native = window.WebSocket;
  window.WebSocket = class BlockedWebSocket extends Native {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(String(url).replace("/ws?", "/ws-blocked?"), protocols);
    }
  };
}

/** A tab that has been here before: its guest id and display name are in sessionStorage. */
function rememberIdentity(identity: { id: string; name: string }): void {
  sessionStorage.setItem("rooms-demo:identity", JSON.stringify(identity));
}

/** Counts the notes the page plays (each chime is two oscillators). */
function countChimes(): void {
  const counter = window as unknown as { __oscillators: number };
  counter.__oscillators = 0;
  const original = AudioContext.prototype.createOscillator;
  AudioContext.prototype.createOscillator = function (this: AudioContext) {
    counter.__oscillators++;
    return original.call(this);
  };
}

/** Pretends the tab is in the background (or back in front), as switching tabs would. */
function setHidden(hidden: boolean): void {
  if (hidden) {
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
    Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
  } else {
    delete (document as { visibilityState?: unknown }).visibilityState;
    delete (document as { hidden?: unknown }).hidden;
  }
  document.dispatchEvent(new Event("visibilitychange"));
}

/** A person: their own browser context (own storage), the page open on the room under their name. */
async function person(name: string, options: { blockWebSocket?: boolean; query?: string } = {}): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1100, height: 740 } });
  await context.addInitScript(rememberIdentity, { id: name.toLowerCase(), name });
  await context.addInitScript(countChimes);
  if (options.blockWebSocket) await context.addInitScript(blockWebSockets);
  const page = await context.newPage();
  page.on("pageerror", (error) => pageErrors.push(`${name}: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() !== "error") return;
    // The blocked person's browser reports its refused WebSockets: that is the point.
    if (options.blockWebSocket && message.text().includes("WebSocket connection to")) return;
    consoleErrors.push(`${name}: ${message.text()}`);
  });
  await page.goto(`${server.url}/?room=${room}${options.query ?? ""}`);
  await page.locator("#status[data-state=connected]").waitFor();
  await page.locator("#presence li.me", { hasText: `${name} (you)` }).waitFor();
  expect(await page.inputValue("#name-input")).toBe(name);
  pages[name] = page;
  return page;
}

async function say(page: Page, text: string): Promise<void> {
  await page.fill("#message-input", text);
  await page.press("#message-input", "Enter");
}

/** The delivered (not pending) message whose text is exactly `text`. */
function message(page: Page, text: string) {
  return page.locator("#messages li.message:not(.pending)").filter({ has: page.getByText(text, { exact: true }) });
}

async function screenshot(page: Page, file: string): Promise<void> {
  await page.screenshot({ path: join(OUTPUT, file) });
}

describeInChromium("demo chat page in Chromium", () => {
  it("two people chat in two browser contexts: messages, senders, presence, typing, read receipts", async () => {
    const alice = await person("Alice");
    const bob = await person("Bob");

    await alice.locator("#presence li[data-user=bob]", { hasText: "Bob" }).waitFor();
    await bob.locator("#presence li[data-user=alice]", { hasText: "Alice" }).waitFor();
    expect(await alice.locator("#status").getAttribute("data-transport")).toBe("websocket");
    expect(await alice.locator("#status-text").textContent()).toBe("Connected · WebSocket");

    await say(alice, "Hi Bob, are you there?");
    await message(bob, "Hi Bob, are you there?").waitFor();
    expect(await message(bob, "Hi Bob, are you there?").locator(".sender").textContent()).toBe("Alice");
    expect(await message(bob, "Hi Bob, are you there?").locator("time").getAttribute("datetime")).toMatch(/^\d{4}-\d\d-\d\dT/);
    await message(alice, "Hi Bob, are you there?").waitFor();
    expect(await message(alice, "Hi Bob, are you there?").getAttribute("class")).toContain("mine");

    await bob.fill("#message-input", "Yes");
    await bob.locator("#message-input").press("End"); // keystrokes fire input events: Bob is typing
    await bob.locator("#message-input").type("!");
    await alice.locator("#typing", { hasText: "Bob is typing…" }).waitFor();
    await bob.press("#message-input", "Enter");
    await message(alice, "Yes!").waitFor();
    await alice.locator("#typing").filter({ hasText: /^$/ }).waitFor(); // a message ends the typing indicator

    // Bob has the chat open and scrolled down, so he has read Alice's message: she sees it.
    await alice.locator(".receipt", { hasText: "Seen by Bob" }).waitFor();
    expect(await alice.locator("#unread").isHidden()).toBe(true);

    await screenshot(alice, "browser-demo-alice.png");
    await screenshot(bob, "browser-demo-bob.png");
  });

  it("counts unread messages on the badge while the chat is minimized", async () => {
    const { Alice: alice, Bob: bob } = pages as { Alice: Page; Bob: Page };
    await bob.click("#minimize");
    expect(await bob.locator("#minimize").getAttribute("aria-expanded")).toBe("false");
    expect(await bob.locator("#chat-body").isHidden()).toBe(true);
    await say(alice, "Ping while you are away");
    await bob.locator("#unread", { hasText: "1" }).waitFor();
    expect(await bob.locator("#unread").getAttribute("aria-label")).toBe("1 unread message");
    expect(await bob.title()).toMatch(/^\(1\) /);
    await screenshot(bob, "browser-demo-bob-minimized.png");
    await bob.click("#minimize");
    await bob.locator("#unread").waitFor({ state: "hidden" });
    await message(bob, "Ping while you are away").waitFor();
  });

  it("a third person whose WebSockets are blocked falls back, shows the transport, and still chats", async () => {
    const alice = pages.Alice!;
    const carol = await person("Carol", { blockWebSocket: true });
    expect(await carol.locator("#status").getAttribute("data-transport")).toBe("sse");
    expect(await carol.locator("#status-text").textContent()).toBe("Connected · SSE");

    await say(carol, "I am behind a strict proxy");
    await message(alice, "I am behind a strict proxy").waitFor();
    await say(alice, "Welcome, Carol");
    await message(carol, "Welcome, Carol").waitFor();
    await alice.locator("#presence li[data-user=carol]", { hasText: "Carol" }).waitFor();
    // History loaded on join: Carol sees what was said before she came.
    await message(carol, "Hi Bob, are you there?").waitFor();
    await screenshot(carol, "browser-demo-carol-sse.png");
  });

  it("?transport=longpoll chats over long-poll", async () => {
    const alice = pages.Alice!;
    const dave = await person("Dave", { query: "&transport=longpoll" });
    expect(await dave.locator("#status").getAttribute("data-transport")).toBe("longpoll");
    expect(await dave.locator("#status-text").textContent()).toBe("Connected · Long-poll");
    await say(dave, "Polling along");
    await message(alice, "Polling along").waitFor();
    await say(alice, "Hi Dave");
    await message(dave, "Hi Dave").waitFor();
  });

  it("changing the display name reconnects under the new name", async () => {
    const { Alice: alice, Dave: dave } = pages as Record<string, Page>;
    await dave!.fill("#name-input", "David");
    await dave!.click("#settings button[type=submit]");
    await dave!.locator("#presence li.me", { hasText: "David (you)" }).waitFor();
    await dave!.locator("#status[data-state=connected]").waitFor();
    await say(dave!, "Call me David");
    await message(alice!, "Call me David").waitFor();
    expect(await message(alice!, "Call me David").locator(".sender").textContent()).toBe("David");
    await alice!.locator("#presence li[data-user=dave]", { hasText: "David" }).waitFor();
  });

  it("renders an XSS payload as text", async () => {
    const { Alice: alice, Bob: bob, Carol: carol } = pages as Record<string, Page>;
    const payload = `<img src=x onerror="window.__xss=1"><script>window.__xss=2</script><b>bold?</b> & "quotes"`;
    await say(alice!, payload);
    for (const page of [alice!, bob!, carol!]) {
      const shown = message(page, payload);
      await shown.waitFor();
      expect(await shown.locator(".bubble").textContent()).toBe(payload);
      expect(await page.locator("#messages img, #messages script, #messages b").count()).toBe(0);
      expect(await page.evaluate(() => (window as { __xss?: unknown }).__xss)).toBeUndefined();
    }
    await screenshot(bob!, "browser-demo-bob-xss.png");
  });

  it("chimes and counts unread messages while the tab is hidden", async () => {
    const { Alice: alice, Bob: bob } = pages as Record<string, Page>;
    await bob!.click("#message-input"); // browsers allow sound only after the user interacted with the page
    await bob!.evaluate(setHidden, true);
    await say(alice!, "Still there, Bob?");
    await bob!.waitForFunction(() => (window as unknown as { __oscillators: number }).__oscillators > 0);
    await bob!.locator("#unread", { hasText: "1" }).waitFor();
    expect(await bob!.title()).toMatch(/^\(1\) /);
    await bob!.evaluate(setHidden, false);
    await bob!.locator("#unread").waitFor({ state: "hidden" });
    expect(await bob!.title()).not.toMatch(/^\(/);
    // Alice's tab is in front: her own message made no sound there.
    expect(await alice!.evaluate(() => (window as unknown as { __oscillators: number }).__oscillators)).toBe(0);
  });

  it("had no uncaught page errors and no console errors", () => {
    expect(pageErrors).toEqual([]);
    expect(consoleErrors).toEqual([]);
  });
});
