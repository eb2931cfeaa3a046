/**
 * The room's WebSockets are not compressed, whatever the client offers
 * (objects/room/websocket-upgrade.ts: per-socket deflate cost a quarter of
 * the room's CPU in a fan-out and about 200 KiB of memory per socket).
 * Browsers and the `ws` package offer permessage-deflate by default; the
 * handshake must decline it and frames must arrive uncompressed and intact.
 */
import { describe, expect, inject, it } from "vitest";
import WebSocket from "ws";
import { DEFAULT_SECRETS } from "./server";
import { postJson, tokenFor } from "./clients";

const base = inject("serverUrl");

describe("WebSocket compression", () => {
  it("declines permessage-deflate offered by the client, and delivers frames uncompressed", async () => {
    const room = `e2e-deflate-${Date.now()}`;
    const ws = new WebSocket(`${base.replace("http", "ws")}/rooms/${room}/ws?token=${await tokenFor("alice")}`, { perMessageDeflate: true });
    const upgradeHeaders = new Promise<Record<string, string | string[] | undefined>>((resolve) => ws.once("upgrade", (res) => resolve(res.headers)));
    const frames: { text: string; binary: boolean }[] = [];
    let onFrame = () => {};
    ws.on("message", (data, isBinary) => {
      frames.push({ text: String(data), binary: isBinary });
      onFrame();
    });
    const until = (predicate: () => boolean) =>
      new Promise<void>((resolve) => {
        onFrame = () => predicate() && resolve();
        onFrame();
      });
    await new Promise((resolve, reject) => (ws.once("open", resolve), ws.once("error", reject)));

    expect((await upgradeHeaders)["sec-websocket-extensions"]).toBeUndefined();
    expect(ws.extensions).toBe("");

    await until(() => frames.some((f) => f.text.startsWith('{"type":"welcome"')));
    const text = "x".repeat(2000); // compressible: a negotiated deflate would have shrunk it
    const response = await postJson(`${base}/rooms/${room}/notify`, { event: "big", data: { text } }, DEFAULT_SECRETS.NOTIFY_SECRET);
    expect(response.status).toBe(202);
    await until(() => frames.some((f) => f.text.startsWith('{"type":"message"')));
    const message = frames.find((f) => f.text.startsWith('{"type":"message"'))!;
    expect(message.binary).toBe(false);
    expect(JSON.parse(message.text).message).toMatchObject({ room, seq: 1, event: "big", data: { text } });
    ws.close();
  });

  it("declines it on Pusher connections too", async () => {
    const ws = new WebSocket(`${base.replace("http", "ws")}/app/${DEFAULT_SECRETS.PUSHER_KEY}?protocol=7`, { perMessageDeflate: true });
    const upgradeHeaders = new Promise<Record<string, string | string[] | undefined>>((resolve) => ws.once("upgrade", (res) => resolve(res.headers)));
    const established = new Promise<string>((resolve) => ws.once("message", (data) => resolve(String(data))));
    await new Promise((resolve, reject) => (ws.once("open", resolve), ws.once("error", reject)));
    expect((await upgradeHeaders)["sec-websocket-extensions"]).toBeUndefined();
    expect(ws.extensions).toBe("");
    expect(JSON.parse(await established)).toMatchObject({ event: "pusher:connection_established" });
    ws.close();
  });
});
