/**
 * Issue 9 §7: the security claims of docs/security.md that no other suite
 * proves. A missing secret is an error, never a default; the constant-time
 * comparison takes any pair of strings; a client cannot speak for the Worker
 * to a room (the internal context header is never forwarded from outside);
 * WebSocket Origin checks let non-browser and same-origin clients through.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { configuredSecretMatcher, secretsEqual } from "../../server/auth/secrets-equal";
import { readCappedBytes } from "../../worker/http/body";
import { ApiError } from "../../worker/http/errors";
import { handle } from "../../worker/router";
import { BASE, call, postJson, tokenFor, TestSocket } from "./helpers";
import { expectError, get, uniqueRoom } from "./support";

const ctx = { waitUntil() {}, passThroughOnException() {}, props: {} } as unknown as ExecutionContext;

describe("secrets", () => {
  it("a missing JWT_SECRET or NOTIFY_SECRET is a 500 server_misconfigured naming it, never a default", async () => {
    const room = uniqueRoom("sec");
    const token = await tokenFor("alice");
    const noJwt = { ...env, JWT_SECRET: undefined } as typeof env;
    const message = await expectError(await handle(new Request(`${BASE}/rooms/${room}/messages`, { headers: { authorization: `Bearer ${token}` } }), noJwt, ctx), 500, "server_misconfigured");
    expect(message).toContain("JWT_SECRET");
    // An empty secret is as missing as an absent one.
    const emptyJwt = { ...env, JWT_SECRET: "" } as typeof env;
    await expectError(await handle(new Request(`${BASE}/rooms/${room}/messages?token=${token}`), emptyJwt, ctx), 500, "server_misconfigured");
    const noNotify = { ...env, NOTIFY_SECRET: undefined } as typeof env;
    const notify = new Request(`${BASE}/rooms/${room}/notify`, { method: "POST", headers: { authorization: "Bearer anything", "content-type": "application/json" }, body: "{}" });
    expect(await expectError(await handle(notify, noNotify, ctx), 500, "server_misconfigured")).toContain("NOTIFY_SECRET");
  });

  it("the secret comparison answers for any pair of strings, whatever their lengths", async () => {
    const secret = env.NOTIFY_SECRET!;
    const matches = configuredSecretMatcher();
    expect(await secretsEqual(secret, secret)).toBe(true);
    expect(await matches(secret, secret)).toBe(true);
    for (const other of ["", "x", secret.slice(0, -1), `${secret}x`, secret.toUpperCase(), "é".repeat(1000), `${secret}\u0000`]) {
      expect(await secretsEqual(other, secret), JSON.stringify(other.slice(0, 20))).toBe(false);
      expect(await matches(other, secret), JSON.stringify(other.slice(0, 20))).toBe(false);
    }
    // The configured secret changes (a new deployment): its new digest is used, the old secret no longer matches.
    expect(await matches(`${secret}-next`, `${secret}-next`)).toBe(true);
    expect(await matches(secret, `${secret}-next`)).toBe(false);
  });

  it("a body is read up to its cap whatever its Content-Length says, encoded or not", async () => {
    const body = "x".repeat(1000);
    const cases: Record<string, string>[] = [{ "content-length": "10" }, { "content-length": "10", "content-encoding": "gzip" }, {}];
    for (const headers of cases) {
      const error = await readCappedBytes(new Response(body, { headers }), 100).catch((e: unknown) => e);
      expect(error, JSON.stringify(headers)).toBeInstanceOf(ApiError);
      expect((error as ApiError).code).toBe("payload_too_large");
      expect((await readCappedBytes(new Response(body, { headers }), 1000)).byteLength).toBe(1000);
    }
  });
});

describe("the room object trusts only the Worker", () => {
  it("an x-room-context header from a client is not forwarded: identity and room come from the token and the path", async () => {
    const room = uniqueRoom("sec");
    const victim = uniqueRoom("sec-victim");
    const forged = JSON.stringify({ room: victim, user: { id: "admin", name: "Admin" }, role: "agent" });
    const token = await tokenFor("mallory", { rooms: [room] });
    const response = await call(`/rooms/${room}/ws?token=${token}`, { headers: { upgrade: "websocket", "x-room-context": forged } });
    const socket = new TestSocket(response.webSocket!);
    expect(await socket.next((f) => f.type === "welcome")).toMatchObject({ room, user: { id: "mallory" } });
    socket.close();
    const page = await call(`/rooms/${room}/messages?after=0`, { headers: { authorization: `Bearer ${token}`, "x-room-context": forged } });
    expect(page.status).toBe(200);
    // The victim room saw nothing, and mallory cannot read it.
    await expectError(await get(`/rooms/${victim}/messages`, token), 403, "forbidden_room");
    const sent = await postJson(`/rooms/${room}/messages`, { data: { text: "hi" } }, token);
    expect(((await sent.json()) as any).message.from).toEqual({ id: "mallory", name: "Mallory" });
  });
});

describe("WebSocket Origin", () => {
  it("no Origin (not a browser) and the service's own origin are let through; a listed origin too", async () => {
    const room = uniqueRoom("sec");
    const token = await tokenFor("alice");
    for (const origin of [undefined, BASE, env.CORS_ORIGINS!.split(",")[0]!.trim()]) {
      const headers: Record<string, string> = { upgrade: "websocket" };
      if (origin) headers.origin = origin;
      const response = await call(`/rooms/${room}/ws?token=${token}`, { headers });
      expect(response.status, String(origin)).toBe(101);
      const socket = new TestSocket(response.webSocket!);
      await socket.next((f) => f.type === "welcome");
      socket.close();
    }
    await expectError(await call(`/rooms/${room}/ws?token=${token}`, { headers: { upgrade: "websocket", origin: "null" } }), 403, "forbidden_origin");
  });
});
