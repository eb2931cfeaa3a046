/**
 * The legacy polling-chat API (SPEC §9) against a real `wrangler dev`: the
 * flows of an old dashboard (post, poll, long-poll woken by another user's
 * post), the exact field mapping, and the same session seen by a native
 * WebSocket client of the room `chat-session:N`.
 */
import { describe, expect, inject, it } from "vitest";
import { tokenFor, WsClient } from "./clients";
import { Api, NOTIFY_SECRET, within, type Envelope } from "./transports";

const api = new Api(inject("serverUrl"));

let sessionCounter = 0;
/** A fresh session number: canonical (no leading zero) and exact in JSON. */
const newSession = () => 1_000_000_000 + (Date.now() % 1_000_000_000) + ++sessionCounter * 7;
const roomOf = (session: number) => `chat-session:${session}`;
const sqlTime = (iso: string) => iso.slice(0, 19).replace("T", " ");

interface LegacyMessage {
  id: number;
  chat_session_id: number;
  sender_type: string;
  sender_id: string | null;
  sender_name: string | null;
  message: string;
  created_at: string;
  is_read: boolean;
}
interface LegacyPage {
  messages: LegacyMessage[];
  longPolling: boolean;
}

const agentToken = () => tokenFor("ivan", { name: "Ivan", role: "agent", rooms: ["chat-session:*"] });
const visitorToken = (session: number) => tokenFor("visitor-1", { name: "Visitor", rooms: [roomOf(session)] });
const poll = (session: number | string, token: string, query = "") => api.get<LegacyPage>(`/api/chat/messages/${session}${query}`, token);
const post = (body: unknown, token?: string) => api.post<{ success: boolean; messageId: number }>("/api/chat/message", body, token);

describe("legacy polling API against wrangler dev", () => {
  it("posts with {success, messageId} and polls with every field mapped as specified", async () => {
    const session = newSession();
    const agent = await agentToken();
    const visitor = await visitorToken(session);
    const before = Date.now();

    const first = await post({ chat_session_id: session, message: "Bonjour !" }, agent);
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ success: true, messageId: 1 });
    const second = await post({ chat_session_id: String(session), message: "Salut" }, visitor);
    expect(second.body).toEqual({ success: true, messageId: 2 });
    await api.notify(roomOf(session), "session_closed", { text: "Session closed" });
    await api.notify(roomOf(session), "ticket_moved", { queue: "billing" });

    const envelopes = (await api.messages(roomOf(session), visitor, { after: 0 })).body.messages;
    expect(envelopes.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    const answer = await poll(session, visitor, "?lastMessageId=0");
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({
      longPolling: false,
      messages: [
        { id: 1, chat_session_id: session, sender_type: "agent", sender_id: "ivan", sender_name: "Ivan", message: "Bonjour !", created_at: sqlTime(envelopes[0]!.ts), is_read: false },
        { id: 2, chat_session_id: session, sender_type: "user", sender_id: "visitor-1", sender_name: "Visitor", message: "Salut", created_at: sqlTime(envelopes[1]!.ts), is_read: false },
        { id: 3, chat_session_id: session, sender_type: "system", sender_id: null, sender_name: null, message: "Session closed", created_at: sqlTime(envelopes[2]!.ts), is_read: false },
        { id: 4, chat_session_id: session, sender_type: "system", sender_id: null, sender_name: null, message: JSON.stringify({ queue: "billing" }), created_at: sqlTime(envelopes[3]!.ts), is_read: false },
      ],
    });
    for (const message of answer.body.messages) {
      expect(message.created_at).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
      const at = Date.parse(`${message.created_at.replace(" ", "T")}Z`); // read as UTC
      expect(Math.abs(at - before)).toBeLessThan(120_000);
    }

    expect((await poll(session, visitor, "?lastMessageId=2")).body.messages.map((m) => m.id)).toEqual([3, 4]);
    expect((await poll(session, visitor, "?lastMessageId=4")).body).toEqual({ messages: [], longPolling: false });
    expect((await poll(session, visitor, "?lastMessageId=4&longPoll=false")).body.longPolling).toBe(false);
    expect((await poll(session, visitor)).body.messages.map((m) => m.id)).toEqual([1, 2, 3, 4]); // no lastMessageId: from the start
    const viaQueryToken = await api.get<LegacyPage>(`/api/chat/messages/${session}?lastMessageId=3&token=${visitor}`);
    expect(viaQueryToken.body.messages.map((m) => m.id)).toEqual([4]);
  });

  it("a dashboard catching up on a long session gets pages of 100 and continues from the last id", async () => {
    const session = newSession();
    const agent = await agentToken();
    for (let i = 1; i <= 105; i++) await api.notify(roomOf(session), "line", { text: `line ${i}` });
    const first = await poll(session, agent, "?lastMessageId=0");
    expect(first.body.messages.map((m) => m.id)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    const rest = await poll(session, agent, `?lastMessageId=${first.body.messages.at(-1)!.id}&longPoll=true`);
    expect(rest.body.messages.map((m) => m.message)).toEqual(["line 101", "line 102", "line 103", "line 104", "line 105"]);
    expect(rest.body.longPolling).toBe(true);
  });

  it("is_read follows the caller's own read pointer", async () => {
    const session = newSession();
    const agent = await agentToken();
    const visitor = await visitorToken(session);
    for (const text of ["one", "two", "three"]) await post({ chat_session_id: session, message: text }, agent);
    expect((await api.post(`/rooms/${roomOf(session)}/read`, { seq: 2 }, visitor)).status).toBe(204);

    expect((await poll(session, visitor, "?lastMessageId=0")).body.messages.map((m) => m.is_read)).toEqual([true, true, false]);
    expect((await poll(session, agent, "?lastMessageId=0")).body.messages.map((m) => m.is_read)).toEqual([false, false, false]);
  });

  it("longPoll=true is held until another user posts, then answers with that post", async () => {
    const session = newSession();
    const agent = await agentToken();
    const visitor = await visitorToken(session);
    await post({ chat_session_id: session, message: "How can I help?" }, agent);

    let settled = false;
    const held = poll(session, agent, "?lastMessageId=1&longPoll=true").finally(() => (settled = true));
    await api.untilStatus(roomOf(session), (s) => s.subscribers === 1, "the dashboard's poll to be held");
    expect(settled).toBe(false);
    const sentAt = performance.now();
    const reply = await post({ chat_session_id: session, message: "Are you there?" }, visitor);
    const answer = await within(held, 10_000, "the held legacy poll");
    console.info(`legacy long-poll: answered ${(answer.at - sentAt).toFixed(1)} ms after the other user's post was sent`);

    expect(answer.status).toBe(200);
    expect(answer.body.longPolling).toBe(true);
    expect(answer.body.messages).toEqual([
      expect.objectContaining({ id: reply.body.messageId, sender_type: "user", sender_id: "visitor-1", sender_name: "Visitor", message: "Are you there?", is_read: false }),
    ]);
    expect(answer.ms).toBeLessThan(20_000); // well inside the 25 s hold

    // With messages already there it answers at once, and still echoes longPolling.
    const ready = await poll(session, agent, "?lastMessageId=0&longPoll=1");
    expect(ready.body.longPolling).toBe(true);
    expect(ready.body.messages.map((m) => m.id)).toEqual([1, 2]);
  });

  it("mixes with native WebSocket clients of chat-session:N, both ways", async () => {
    const session = newSession();
    const room = roomOf(session);
    const agent = await agentToken();
    const app = await tokenFor("wes", { name: "Wes", role: "customer", rooms: [room] });
    const ws = await WsClient.open(`${api.wsBase}/rooms/${room}/ws?token=${app}`);
    await within(ws.until((frames) => frames.find((f) => f.type === "welcome")), 10_000, "welcome");

    // Legacy post → native WebSocket message.
    const posted = await post({ chat_session_id: session, message: "Bonjour !" }, agent);
    const [envelope] = (await within(ws.untilMessages(1), 10_000, "the legacy post over WebSocket")) as Envelope[];
    expect(envelope).toMatchObject({ room, seq: posted.body.messageId, event: "message", from: { id: "ivan", name: "Ivan" }, data: { text: "Bonjour !" } });

    // A dashboard long-polls; the app's WebSocket send wakes it with the native message mapped.
    const held = poll(session, agent, `?lastMessageId=${posted.body.messageId}&longPoll=true`);
    await api.untilStatus(room, (s) => s.subscribers === 2, "the WebSocket and the held poll");
    ws.send({ type: "send", data: { text: "from the app" }, clientId: "w-1" });
    const ack = await within(ws.until((frames) => frames.find((f) => f.type === "ack" && f.clientId === "w-1")), 10_000, "the ack");
    const answer = await within(held, 10_000, "the poll woken by the WebSocket send");
    const [native] = (await ws.untilMessages(2)).slice(1) as Envelope[];
    expect(answer.body).toEqual({
      longPolling: true,
      messages: [
        { id: ack.seq, chat_session_id: session, sender_type: "customer", sender_id: "wes", sender_name: "Wes", message: "from the app", created_at: sqlTime(native!.ts), is_read: false },
      ],
    });
    expect(ws.messages().map((m: Envelope) => m.seq)).toEqual([1, 2]);
    ws.close();
  });

  it("authenticates like every route: 401 without a token, 403 for a session the token does not grant", async () => {
    const session = newSession();
    const other = await tokenFor("mallory", { rooms: ["chat-session:1"] });
    const answers: { status: number; body: any }[] = [await poll(session, ""), await post({ chat_session_id: session, message: "hi" })];
    for (const answer of answers) {
      expect(answer.status).toBe(401);
      expect(answer.body.error).toEqual({ code: "missing_token", message: expect.any(String) });
    }
    const refused: { status: number; body: any }[] = [await poll(session, other), await post({ chat_session_id: session, message: "hi" }, other)];
    for (const answer of refused) {
      expect(answer.status).toBe(403);
      expect(answer.body.error).toEqual({ code: "forbidden_room", message: expect.any(String) });
    }
    const notify = await api.get(`/api/chat/messages/${session}`, NOTIFY_SECRET);
    expect(notify.status).toBe(401); // the notify secret is not a user token
  });

  describe("bad input → 400 in the contract's error shape", () => {
    const expectError = (answer: { status: number; body: any }, status: number, code: string, field?: string) => {
      expect({ status: answer.status, code: answer.body?.error?.code }).toEqual({ status, code });
      expect(answer.body.error).toEqual({ code, message: expect.any(String) });
      expect(answer.body.error.message.length).toBeGreaterThan(0);
      if (field) expect(answer.body.error.message).toContain(field);
      // Legacy clients test `success`; it is false on every error (documented extension).
      expect(answer.body.success).toBe(false);
    };

    it.each([
      ["abc", "a word"],
      ["-1", "a negative number"],
      ["1.5", "a decimal"],
      ["1e3", "an exponent"],
      ["", "empty"],
      ["12345678901234567890", "too long"],
    ])("lastMessageId=%s (%s) → 400 invalid_query", async (value) => {
      const session = newSession();
      expectError(await poll(session, await agentToken(), `?lastMessageId=${value}`), 400, "invalid_query", "lastMessageId");
    });

    it("longPoll that is not a boolean → 400 invalid_query", async () => {
      expectError(await poll(newSession(), await agentToken(), "?longPoll=yes"), 400, "invalid_query", "longPoll");
    });

    it.each([
      ["abc", "a word"],
      ["-5", "a negative number"],
      ["4.5", "a decimal"],
      ["007", "leading zeros"],
      ["1234567890123456", "beyond the exact integers of JSON"],
    ])("session id %s (%s) → 400 invalid_room", async (session) => {
      expectError(await poll(session, await agentToken(), "?lastMessageId=0"), 400, "invalid_room");
    });

    it.each([
      [{ chat_session_id: "abc", message: "hi" }, "chat_session_id"],
      [{ chat_session_id: -1, message: "hi" }, "chat_session_id"],
      [{ chat_session_id: 4.5, message: "hi" }, "chat_session_id"],
      [{ chat_session_id: 9_007_199_254_740_993, message: "hi" }, "chat_session_id"],
      [{ message: "hi" }, "chat_session_id"],
      [{ chat_session_id: 45 }, "message"],
      [{ chat_session_id: 45, message: "" }, "message"],
      [{ chat_session_id: 45, message: 42 }, "message"],
    ])("POST %j → 400 invalid_body naming %s", async (body, field) => {
      expectError(await post(body, await agentToken()), 400, "invalid_body", field);
    });

    it("POST with malformed JSON or no JSON content type", async () => {
      const agent = await agentToken();
      const malformed = await api.request("/api/chat/message", { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${agent}` }, body: "{" });
      expectError(malformed, 400, "invalid_body");
      const form = await api.request("/api/chat/message", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Bearer ${agent}` }, body: "chat_session_id=45&message=hi" });
      expectError(form, 415, "unsupported_media_type");
    });
  });
});
