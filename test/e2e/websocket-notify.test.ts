import { describe, expect, inject, it } from "vitest";
import { DEFAULT_SECRETS } from "./server";
import { postJson, tokenFor, WsClient } from "./clients";

const base = inject("serverUrl");

describe("WebSocket and notify against wrangler dev", () => {
  it("a notify POST reaches a connected WebSocket client, with a gap-free seq", async () => {
    const room = `e2e-ws-${Date.now()}`;
    const ws = await WsClient.open(`${base.replace("http", "ws")}/rooms/${room}/ws?token=${await tokenFor("alice")}`);
    await ws.until((frames) => frames.find((f) => f.type === "welcome"), "welcome");
    const response = await postJson(`${base}/rooms/${room}/notify`, { event: "ticket_assigned", data: { ticket: 7 } }, DEFAULT_SECRETS.NOTIFY_SECRET);
    expect(response.status).toBe(202);
    const [message] = await ws.untilMessages(1);
    expect(message).toMatchObject({ room, seq: 1, event: "ticket_assigned", data: { ticket: 7 } });
    expect(message).not.toHaveProperty("from");
    ws.close();
  });
});
