/**
 * SPEC §2: client JWTs (HS256 only, sub required, exp/nbf honoured), room
 * grants (exact, prefix `x-*`, `*`, and the always-allowed `user:<sub>`), and
 * the NOTIFY_SECRET that server-side triggers present.
 */
import { env } from "cloudflare:workers";
import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { call, notify, postJson, tokenFor, TestSocket } from "./helpers";
import { expectError, get, uniqueRoom } from "./support";

const secret = () => new TextEncoder().encode(env.JWT_SECRET!);
const now = () => Math.floor(Date.now() / 1000);
const b64url = (value: unknown) => btoa(JSON.stringify(value)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");

function sign(claims: Record<string, unknown>, alg = "HS256", key: Uint8Array = secret()): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg, typ: "JWT" }).setIssuedAt().sign(key);
}

const room = uniqueRoom("auth");
const messagesPath = `/rooms/${room}/messages`;

describe("client tokens", () => {
  // A valid token works as a Bearer header and as ?token=.
  it("accepts a valid HS256 token in the header or the query", async () => {
    const token = await tokenFor("alice", { rooms: [room] });
    expect((await get(messagesPath, token)).status).toBe(200);
    expect((await call(`${messagesPath}?token=${token}`)).status).toBe(200);
  });

  // No token anywhere: missing_token on every JWT route.
  it("no token → 401 missing_token", async () => {
    await expectError(await get(messagesPath), 401, "missing_token");
    await expectError(await call(`${messagesPath}?token=`), 401, "missing_token");
    await expectError(await call(messagesPath, { headers: { authorization: "Bearer" } }), 401, "missing_token");
    await expectError(await postJson(messagesPath, { data: { text: "x" } }), 401, "missing_token");
    await expectError(await call(`/rooms/${room}/ws`, { headers: { upgrade: "websocket" } }), 401, "missing_token");
    await expectError(await get(`/rooms/${room}/events`), 401, "missing_token");
    await expectError(await postJson(`/rooms/${room}/typing`, {}), 401, "missing_token");
    await expectError(await postJson(`/rooms/${room}/read`, { seq: 0 }), 401, "missing_token");
    await expectError(await get(`/rooms/${room}/presence`), 401, "missing_token");
    await expectError(await get(`/api/chat/messages/1`), 401, "missing_token");
    await expectError(await postJson(`/api/chat/message`, { chat_session_id: 1, message: "x" }), 401, "missing_token");
  });

  const badTokens: [string, () => Promise<string>][] = [
    ["garbage", async () => "not-a-jwt"],
    ["three garbage parts", async () => "aaa.bbb.ccc"],
    ["alg:none", async () => `${b64url({ alg: "none", typ: "JWT" })}.${b64url({ sub: "mallory", rooms: ["*"], exp: now() + 3600 })}.`],
    ["alg:none with a signature", async () => {
      const real = await tokenFor("mallory");
      return `${b64url({ alg: "none", typ: "JWT" })}.${real.split(".")[1]}.${real.split(".")[2]}`;
    }],
    ["a wrong secret", () => tokenFor("mallory", { rooms: ["*"] }, "some-other-secret-0123456789abcdef")],
    ["a tampered payload", async () => {
      const real = await tokenFor("bob", { rooms: [] });
      return `${real.split(".")[0]}.${b64url({ sub: "bob", rooms: ["*"], exp: now() + 3600 })}.${real.split(".")[2]}`;
    }],
    ["an expired token", () => sign({ sub: "alice", rooms: ["*"], exp: now() - 120 })],
    ["a not-yet-valid token (nbf)", () => sign({ sub: "alice", rooms: ["*"], nbf: now() + 3600, exp: now() + 7200 })],
    ["HS512", () => sign({ sub: "alice", rooms: ["*"] }, "HS512")],
    ["HS384", () => sign({ sub: "alice", rooms: ["*"] }, "HS384")],
    ["no sub", () => sign({ name: "Nobody", rooms: ["*"] })],
    ["an empty sub", () => sign({ sub: "", rooms: ["*"] })],
    ["rooms not an array", () => sign({ sub: "alice", rooms: "*" })],
  ];

  // Every other kind of bad token is invalid_token, on every JWT route and over WebSocket.
  it.each(badTokens)("%s → 401 invalid_token", async (_, make) => {
    const token = await make();
    await expectError(await get(messagesPath, token), 401, "invalid_token");
    await expectError(await call(`${messagesPath}?token=${encodeURIComponent(token)}`), 401, "invalid_token");
    await expectError(await postJson(messagesPath, { data: { text: "x" } }, token), 401, "invalid_token");
    await expectError(await call(`/rooms/${room}/ws?token=${encodeURIComponent(token)}`, { headers: { upgrade: "websocket" } }), 401, "invalid_token");
    await expectError(await postJson(`/api/chat/message`, { chat_session_id: 1, message: "x" }, token), 401, "invalid_token");
  });

  // The display name comes from `name`, falling back to `sub`; `from` is the token's identity.
  it("from carries the token's sub and name", async () => {
    const named = await sign({ sub: "u-1", name: "Ada Lovelace", rooms: [room], exp: now() + 60 });
    const unnamed = await sign({ sub: "u-2", rooms: [room], exp: now() + 60 });
    const a = (await (await postJson(messagesPath, { data: { text: "a" } }, named)).json()) as any;
    const b = (await (await postJson(messagesPath, { data: { text: "b" } }, unnamed)).json()) as any;
    expect(a.message.from).toEqual({ id: "u-1", name: "Ada Lovelace" });
    expect(b.message.from).toEqual({ id: "u-2", name: "u-2" });
  });
});

describe("room grants", () => {
  // A room outside the token's grants is 403 forbidden_room on every JWT route.
  it("a room not granted → 403 forbidden_room", async () => {
    const token = await tokenFor("alice", { rooms: ["lobby"] });
    const other = uniqueRoom("secret");
    await expectError(await get(`/rooms/${other}/messages`, token), 403, "forbidden_room");
    await expectError(await postJson(`/rooms/${other}/messages`, { data: { text: "x" } }, token), 403, "forbidden_room");
    await expectError(await call(`/rooms/${other}/ws?token=${token}`, { headers: { upgrade: "websocket" } }), 403, "forbidden_room");
    await expectError(await get(`/rooms/${other}/events`, token), 403, "forbidden_room");
    await expectError(await postJson(`/rooms/${other}/typing`, {}, token), 403, "forbidden_room");
    await expectError(await postJson(`/rooms/${other}/read`, { seq: 0 }, token), 403, "forbidden_room");
    await expectError(await get(`/rooms/${other}/presence`, token), 403, "forbidden_room");
    await expectError(await get(`/api/chat/messages/5`, token), 403, "forbidden_room");
  });

  // Every user may use their own inbox, even with no rooms claim; not someone else's.
  it("user:<sub> is always allowed, user:<other> is not", async () => {
    const token = await sign({ sub: "zoe", exp: now() + 60 });
    const own = await postJson("/rooms/user:zoe/messages", { data: { text: "note to self" } }, token);
    expect(own.status).toBe(201);
    const socket = await TestSocket.open("user:zoe", token);
    expect(await socket.next((f) => f.type === "welcome")).toMatchObject({ room: "user:zoe", user: { id: "zoe" } });
    socket.close();
    await expectError(await get("/rooms/user:zoey/messages", token), 403, "forbidden_room");
    await expectError(await get("/rooms/user:bob/messages", token), 403, "forbidden_room");
    await expectError(await get("/rooms/lobby/messages", token), 403, "forbidden_room");
  });

  // `support-*` grants rooms that start with `support-`, and nothing else.
  it("prefix grants match by prefix only", async () => {
    const token = await tokenFor("agent", { rooms: ["support-*", "lobby"], role: "agent" });
    expect((await get("/rooms/support-42/messages", token)).status).toBe(200);
    expect((await get("/rooms/support-/messages", token)).status).toBe(200);
    expect((await get("/rooms/lobby/messages", token)).status).toBe(200);
    await expectError(await get("/rooms/support/messages", token), 403, "forbidden_room");
    await expectError(await get("/rooms/xsupport-42/messages", token), 403, "forbidden_room");
    await expectError(await get("/rooms/lobby2/messages", token), 403, "forbidden_room");
  });

  // `*` grants every room.
  it("`*` grants every room", async () => {
    const token = await tokenFor("root", { rooms: ["*"] });
    for (const r of ["anything", "support-1", "user:someone-else", "chat-session:9"]) {
      expect((await get(`/rooms/${r}/messages`, token)).status).toBe(200);
    }
  });

  // Legacy sessions are rooms `chat-session:N`, granted like any other.
  it("legacy sessions obey the same grants", async () => {
    const token = await tokenFor("agent", { rooms: ["chat-session:*"] });
    expect((await get("/api/chat/messages/77", token)).status).toBe(200);
    const limited = await tokenFor("visitor", { rooms: ["chat-session:1"] });
    await expectError(await postJson("/api/chat/message", { chat_session_id: 2, message: "hi" }, limited), 403, "forbidden_room");
  });
});

describe("notify secret", () => {
  const target = uniqueRoom("notify-auth");
  const body = { event: "ping", data: {} };

  // Triggers without the secret, with a wrong one, or with a user's JWT are refused.
  it("missing or wrong NOTIFY_SECRET → 401", async () => {
    await expectError(await postJson(`/rooms/${target}/notify`, body), 401, "missing_token");
    await expectError(await postJson(`/rooms/${target}/notify`, body, "wrong"), 401, "invalid_token");
    await expectError(await postJson(`/rooms/${target}/notify`, body, `${env.NOTIFY_SECRET}x`), 401, "invalid_token");
    await expectError(await postJson(`/rooms/${target}/notify`, body, env.NOTIFY_SECRET!.slice(0, -1)), 401, "invalid_token");
    await expectError(await postJson(`/rooms/${target}/notify`, body, await tokenFor("alice")), 401, "invalid_token");
    await expectError(await postJson("/notify", { ...body, rooms: [target] }), 401, "missing_token");
    await expectError(await postJson("/notify", { ...body, rooms: [target] }, "wrong"), 401, "invalid_token");
    await expectError(await get(`/rooms/${target}/status`), 401, "missing_token");
    await expectError(await get(`/rooms/${target}/status`, await tokenFor("alice")), 401, "invalid_token");
    // Nothing was published by the refused calls.
    const accepted = await notify(target, body);
    expect(((await accepted.json()) as any).message.seq).toBe(1);
  });

  // The secret is not a client token: it opens no room for reading.
  it("NOTIFY_SECRET is not accepted as a client JWT", async () => {
    await expectError(await get(`/rooms/${target}/messages`, env.NOTIFY_SECRET), 401, "invalid_token");
  });
});
