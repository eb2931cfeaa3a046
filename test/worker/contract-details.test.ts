/** Details of the contract where the spec leaves room: each choice pinned by a test. */
import { describe, expect, it } from "vitest";
import { call, notify, postJson, tokenFor } from "./helpers";

describe("contract details", () => {
  it("legacy errors keep the error shape and add success:false", async () => {
    const token = await tokenFor("legacy-err", { rooms: ["chat-session:*"] });
    const response = await postJson("/api/chat/message", { chat_session_id: 5, message: "" }, token);
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ success: false, error: { code: "invalid_body", message: expect.stringContaining("message") } });
  });

  it("legacy session ids are canonical numbers: 007 is refused, not confused with 7", async () => {
    const token = await tokenFor("legacy-ids", { rooms: ["chat-session:*"] });
    const response = await call("/api/chat/messages/007", { headers: { authorization: `Bearer ${token}` } });
    expect(response.status).toBe(400);
    expect(((await response.json()) as any).error.code).toBe("invalid_room");
  });

  it('a notify named "message" must carry data.text like a chat message', async () => {
    const refused = await notify("details-notify", { event: "message", data: { other: 1 } });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as any).error).toMatchObject({ code: "invalid_body", message: expect.stringContaining("data.text") });
    const accepted = await notify("details-notify", { event: "message", data: { text: "from the bot" }, from: { id: "bot", name: "Bot" } });
    expect(accepted.status).toBe(202);
  });

  it("limit above MAX_PAGE_LIMIT (1000) is invalid_query", async () => {
    const token = await tokenFor("limits");
    const over = await call("/rooms/details-limit/messages?after=0&limit=1001", { headers: { authorization: `Bearer ${token}` } });
    expect(over.status).toBe(400);
    expect(((await over.json()) as any).error).toMatchObject({ code: "invalid_query", message: expect.stringContaining("limit") });
    const max = await call("/rooms/details-limit/messages?after=0&limit=1000", { headers: { authorization: `Bearer ${token}` } });
    expect(max.status).toBe(200);
  });
});
