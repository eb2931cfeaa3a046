import { describe, expect, it } from "vitest";
import { call, postJson, tokenFor, TestSocket } from "./helpers";

describe("smoke", () => {
  it("sends over HTTP and receives over WebSocket", async () => {
    const token = await tokenFor("alice");
    const socket = await TestSocket.open("smoke", token);
    const welcome = await socket.next((f) => f.type === "welcome");
    expect(welcome).toMatchObject({ room: "smoke", seq: 0, user: { id: "alice", name: "Alice" } });
    const response = await postJson("/rooms/smoke/messages", { data: { text: "hi" } }, token);
    expect(response.status).toBe(201);
    const [message] = await socket.untilMessages(1);
    expect(message).toMatchObject({ room: "smoke", seq: 1, event: "message", data: { text: "hi" } });
    const history = await call("/rooms/smoke/messages?after=0", { headers: { authorization: `Bearer ${token}` } });
    expect(await history.json()).toMatchObject({ seq: 1, messages: [{ seq: 1 }] });
    socket.close();
  });
});
