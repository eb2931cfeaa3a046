/**
 * `npm run serve` (scripts/serve.mjs), the production-mode runtime the
 * benchmarks and the soak measure: the deployable bundle on workerd without
 * wrangler dev. It starts on its own port and state directory, answers, holds
 * a WebSocket round trip and a notify, serves the demo page, keeps history
 * across a restart, and refuses a port that is already taken.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { postJson, tokenFor, WsClient } from "./clients";
import { ServeServer } from "./serve-server";
import { DEFAULT_SECRETS, writeTestVars } from "./server";

const ROOT = resolve(import.meta.dirname, "../..");
let server: ServeServer | undefined;

afterAll(async () => {
  await server?.stop();
  if (server) rmSync(server.persistDir, { recursive: true, force: true });
});

/** Each start builds the bundle and starts workerd: on a busy 2-core machine that took up to a minute and a half. */
const STARTS_TIMEOUT_MS = 300_000;

describe("npm run serve", () => {
  it("serves the Worker, the demo page, a WebSocket round trip and a notify, and keeps history across a restart", async () => {
    server = await ServeServer.start();
    expect(await (await fetch(`${server.url}/health`)).json()).toEqual({ ok: true });
    const page = await fetch(`${server.url}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("<html");

    const room = `serve-smoke-${Date.now()}`;
    const token = await tokenFor("alice");
    const ws = await WsClient.open(`${server.wsUrl}/rooms/${room}/ws?token=${token}`);
    await ws.until((frames) => frames.find((f) => f.type === "welcome"), "welcome");
    ws.send({ type: "send", data: { text: "hello" }, clientId: "c-1" });
    const [sent] = await ws.untilMessages(1);
    expect(sent).toMatchObject({ room, seq: 1, from: { id: "alice" }, data: { text: "hello" } });

    const notified = await postJson(`${server.url}/rooms/${room}/notify`, { event: "ticket_assigned", data: { ticket: 7 } }, DEFAULT_SECRETS.NOTIFY_SECRET);
    expect(notified.status).toBe(202);
    const [, pushed] = await ws.untilMessages(2);
    expect(pushed).toMatchObject({ room, seq: 2, event: "ticket_assigned", data: { ticket: 7 } });
    ws.close();

    await server.stop();
    server = await server.restart();
    const history = await fetch(`${server.url}/rooms/${room}/messages?after=0`, { headers: { authorization: `Bearer ${token}` } });
    expect(history.status).toBe(200);
    const body = (await history.json()) as { messages: { seq: number; data: unknown }[] };
    expect(body.messages.map((m) => [m.seq, m.data])).toEqual([
      [1, { text: "hello" }],
      [2, { ticket: 7 }],
    ]);
  }, STARTS_TIMEOUT_MS);

  it("says so and exits when its port is already taken", async () => {
    const blocker = createServer();
    await new Promise<void>((listening) => blocker.listen(0, "127.0.0.1", listening));
    const port = (blocker.address() as AddressInfo).port;
    const state = mkdtempSync(join(tmpdir(), "rooms-serve-taken-"));
    try {
      const taken = spawnSync(join(ROOT, "node_modules/.bin/node"), ["scripts/serve.mjs", "--port", String(port), "--state", state, "--env-file", writeTestVars(state)], {
        cwd: ROOT,
        encoding: "utf8",
        timeout: 60_000,
      });
      expect(taken.status).toBe(1);
      expect(taken.stderr).toContain(`127.0.0.1:${port} is already in use`);
    } finally {
      blocker.close();
      rmSync(state, { recursive: true, force: true });
    }
  });
});
